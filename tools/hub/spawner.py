"""Starting a participant's server: as their own Unix user, in their home, inside their memory cgroup.

RoomSpawner is JupyterHub's LocalProcessSpawner with four changes: the hub's user NAME runs as the Unix
account PREFIX+NAME (participants.py), the server process joins that participant's cgroup before it drops
root (limits.py, cgroup-v1), stopping a server also kills whatever it left in the cgroup (a kernel
orphaned by a killed server), and every start gets a fresh port outside the range of outgoing connections
(ports.py). On a systemd server jupyterhub_config.py uses SystemdSpawner instead; both get
the same home preparation (prepare) before every start.
"""
from __future__ import annotations

import asyncio
import pwd

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Unicode

from limits import Cgroup
from ports import pick
from participants import prepare_home
from room import Room


async def prepare(room: Room, spawner) -> None:
    """pre_spawn_hook: the participant's account, private home and notebook copies (run by the hub as root)."""
    await asyncio.to_thread(prepare_home, room, spawner.user.name)


class RoomSpawner(LocalProcessSpawner):
    """LocalProcessSpawner for a room: per-participant Unix user and cgroup-v1 memory limit."""

    user_prefix = Unicode("room-", help="Unix account of participant NAME: PREFIX + NAME.").tag(config=True)
    ports_given: dict[str, int] = {}  # participant -> port of their running server, for all spawners of the hub

    @property
    def system_user(self) -> str:
        """The Unix account that runs this participant's server."""
        return self.user_prefix + self.user.name

    def cgroup(self) -> Cgroup | None:
        """This participant's memory cgroup, when the room has a memory limit."""
        return Cgroup.for_user(self.system_user) if self.mem_limit else None

    def make_preexec_fn(self, name):
        """In the child, before exec: join the cgroup (still root), then become the participant."""
        become = set_user_setuid(self.system_user)
        group = self.cgroup()

        def preexec():
            """Runs in the child between fork and exec."""
            if group is not None:
                group.join()
            become()

        return preexec

    def user_env(self, env):
        """USER, HOME and SHELL of the participant's account."""
        entry = pwd.getpwnam(self.system_user)
        env.update(USER=entry.pw_name, HOME=entry.pw_dir, SHELL=entry.pw_shell or "/bin/bash")
        return env

    async def start(self):
        """Make the cgroup with this room's limit, then start the server as the participant."""
        group = self.cgroup()
        if group is not None:  # a server the hub believes stopped has nothing left running: kill any orphans
            await asyncio.to_thread(group.kill)
            await asyncio.to_thread(group.create, int(self.mem_limit))
        given = RoomSpawner.ports_given
        given.pop(self.user.name, None)
        self.port = given[self.user.name] = pick(set(given.values()), self.ip or "127.0.0.1")
        return await super().start()

    async def stop(self, now=False):
        """Stop the server, then kill anything left in its cgroup (kernels, terminals) and remove the cgroup."""
        await super().stop(now=now)
        RoomSpawner.ports_given.pop(self.user.name, None)
        group = self.cgroup()
        if group is not None:
            await asyncio.to_thread(group.remove)
