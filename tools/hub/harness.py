"""A room run as a subprocess: tools/hub/serve.py on a free port of 127.0.0.1, state in a temporary folder.

For the tests (tests/hub_room.py) and the load test (loadtest.py), never for teaching: the passwords are random,
the accounts get a random prefix (se + 4 hex + -), and close() removes everything it made: accounts, homes,
runtime folders, cgroups, the state folder. When the repository's Python sits under a private folder (pyenv in
/root), open_the_way() lets other users traverse that folder (chmod o+x) while the room runs and close()
restores its mode; serve.py itself refuses in that case and says what to do. Needs root.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import limits  # noqa: E402
import participants  # noqa: E402
from client import Participant  # noqa: E402
from room import Room  # noqa: E402
from ports import free_port  # noqa: E402
from serve import LOG, blocked, reachable_paths  # noqa: E402


class Hub:
    """tools/hub/serve.py as a subprocess, with a roster, two random passwords and a temporary state folder."""

    def __init__(self, names: list[str], memory_limit: str = "1G", threads: int = 1):
        self.names, self.memory_limit, self.threads = names, memory_limit, threads
        self.password, self.admin_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        self.prefix = f"se{secrets.token_hex(2)}-"
        self.state = Path(tempfile.mkdtemp(prefix="selfextend-room-"))
        self.output = self.state.parent / f"{self.state.name}.out"
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.modes: dict[Path, int] = {}
        self.options: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The room's address."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def room(self) -> Room:
        """The settings serve.py saved."""
        return Room.load(self.state)

    def open_the_way(self) -> None:
        """Let other users traverse the folders that hide the venv's Python (restored by close)."""
        probe = Room(participants=["x"], state=str(self.state))
        for folder in blocked(reachable_paths(probe)[:-1]):  # the state folder: serve.py opens it itself
            self.modes[folder] = folder.stat().st_mode
            folder.chmod(folder.stat().st_mode | 0o001)

    def start(self, cull_idle: str = "60m", timeout: float = 240.0, extra: tuple[str, ...] = ()) -> float:
        """Start the room (serve.py options EXTRA added) and wait until it answers; return the seconds it took."""
        self.options = {"cull_idle": cull_idle}
        self.port = self.port or free_port()  # a restart keeps the address, as the teacher's would
        env = {**os.environ, "SELFEXTEND_HUB_PASSWORD": self.password,
               "SELFEXTEND_HUB_ADMIN_PASSWORD": self.admin_password}
        command = [sys.executable, str(HERE / "serve.py"), "--participants", ",".join(self.names),
                   "--state", str(self.state), "--port", str(self.port), "--user-prefix", self.prefix,
                   "--memory-limit", self.memory_limit, "--limits", "cgroup-v1", "--cull-idle", cull_idle,
                   "--threads", str(self.threads), *extra]
        start = time.perf_counter()
        seen = self.output.stat().st_size if self.output.exists() else 0  # earlier runs' lines come first
        with open(self.output, "a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env)
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve.py exited with {self.process.returncode}:\n{self.output.read_text()[seen:]}")
            if "On the projector" in self.output.read_text()[seen:]:
                return time.perf_counter() - start
            time.sleep(0.3)
        raise RuntimeError(f"the room did not start in {timeout:.0f} s:\n{self.output.read_text()}")

    def stop(self, timeout: float = 180.0) -> float:
        """Stop the room as the teacher does (SIGTERM to serve.py); return the seconds it took."""
        start = time.perf_counter()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        return time.perf_counter() - start

    def restart(self, **options) -> float:
        """Stop and start again with the same state (and OPTIONS for start); return the seconds it took."""
        return self.stop() + self.start(**options)

    def participant(self, name: str, password: str | None = None) -> Participant:
        """A participant of this room, not yet signed in."""
        return Participant(self.url, name, self.password if password is None else password)

    def signed_in(self, name: str) -> Participant:
        """A participant with an API token."""
        person = self.participant(name)
        person.sign_in()
        return person

    def hub_log(self, tail: int | None = 12000) -> str:
        """JupyterHub's log, its last TAIL characters (None: all); "" when there is none."""
        try:
            text = (self.state / LOG).read_text(errors="replace")
        except OSError:
            return ""
        return text if tail is None else text[-tail:]

    def log_about(self, name: str, last: int = 6) -> list[str]:
        """The hub log's last warnings and errors that name participant NAME (close() removes the log)."""
        lines = self.hub_log(tail=None).splitlines()
        return [line[:300] for line in lines if name in line and line.startswith(("[W", "[E", "[C"))][-last:]

    def close(self) -> None:
        """Stop the room, remove the accounts, homes and state, restore folder modes."""
        self.stop()
        for folder, mode in self.modes.items():
            folder.chmod(mode)
        room = Room(participants=self.names, state=str(self.state), user_prefix=self.prefix)
        for name in room.users:
            try:
                participants.remove_account(room, name)
            except Exception as error:  # keep cleaning up the others
                print(f"could not remove {room.system_user(name)}: {error}")
            limits.Cgroup.for_user(room.system_user(name)).remove()
        shutil.rmtree(self.state, ignore_errors=True)
        try:
            Path(room.runtime).rmdir()  # only when no other room uses it
        except OSError:
            pass
        self.output.unlink(missing_ok=True)
