"""Per-participant memory limits: which mechanism this machine offers, and the cgroups that enforce it.

    systemd    PID 1 is systemd (a teacher's or rented server): jupyterhub-systemdspawner runs each
               participant's server as a transient unit with MemoryMax= and MemorySwapMax=0. systemd owns
               the cgroup tree there (v1 or v2), so the hub must not write into it behind systemd's back.
    cgroup-v1  no systemd, and the v1 memory controller is mounted at /sys/fs/cgroup/memory (containers,
               CI): the hub, as root, makes one cgroup per participant with memory.limit_in_bytes (and
               memory.memsw.limit_in_bytes, so swap cannot stretch it), and starts the server inside it;
               kernels and terminals are its children, so they count against the same limit.

A cgroup v2 machine without systemd is refused: delegating the v2 memory controller needs a cgroup that
holds no processes, which a hub started from a shell cannot arrange safely. When the limit is hit, the
kernel's OOM killer stops the biggest process in that participant's cgroup (their kernel), nobody else's.
Each participant's cgroup nests under the hub's own (.../selfextend-hub/NAME), so whatever limits the hub
itself runs under apply to the room as a whole. Standard library only.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
PROC = Path("/proc")
GROUP = "selfextend-hub"  # the folder under the hub's own cgroup that holds one cgroup per participant


class LimitError(RuntimeError):
    """A memory limit was asked for that this machine cannot enforce."""


def pid1_is_systemd(proc: Path = PROC) -> bool:
    """Whether the init process is systemd."""
    try:
        return (proc / "1" / "comm").read_text().strip() == "systemd"
    except OSError:
        return False


def detect(fs: Path = CGROUP_FS, proc: Path = PROC) -> str | None:
    """'systemd', 'cgroup-v1' or None: how this machine can limit a participant's memory."""
    if pid1_is_systemd(proc):
        return "systemd"
    if (fs / "memory" / "memory.limit_in_bytes").is_file():
        return "cgroup-v1"
    return None


def why_not(fs: Path = CGROUP_FS, proc: Path = PROC) -> str:
    """In words, why detect() found no mechanism."""
    controllers = fs / "cgroup.controllers"
    if controllers.is_file():
        return ("this machine has cgroup v2 without systemd as init, where the hub cannot take the memory "
                "controller for itself; run the room on a systemd server (--limits systemd)")
    return f"no cgroup memory controller is mounted under {fs}"


def own_cgroup(proc: Path = PROC) -> str:
    """The v1 memory cgroup of this process, e.g. '/' or '/system.slice/x'."""
    for line in (proc / "self" / "cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    raise LimitError("this process is in no v1 memory cgroup")


@dataclass(frozen=True)
class Cgroup:
    """One participant's v1 memory cgroup."""

    path: Path

    @classmethod
    def for_user(cls, name: str, fs: Path = CGROUP_FS, proc: Path = PROC) -> "Cgroup":
        """The cgroup of system user NAME, under the hub's own memory cgroup."""
        return cls(fs / "memory" / own_cgroup(proc).lstrip("/") / GROUP / name)

    def _write(self, file: str, value: str) -> None:
        (self.path / file).write_text(value)

    def create(self, limit: int) -> None:
        """Make the cgroup (if needed) and set its memory limit, swap included, to LIMIT bytes."""
        self.path.mkdir(parents=True, exist_ok=True)
        memsw = self.path / "memory.memsw.limit_in_bytes"
        # memsw must stay >= the memory limit at every step: raise memsw first when growing, last when shrinking
        if memsw.exists() and int(memsw.read_text()) < limit:
            memsw.write_text(str(limit))
        self._write("memory.limit_in_bytes", str(limit))
        if memsw.exists():
            memsw.write_text(str(limit))

    def join(self, pid: int = 0) -> None:
        """Move process PID (0: the caller) into the cgroup."""
        self._write("cgroup.procs", str(pid or os.getpid()))

    def pids(self) -> list[int]:
        """The processes in the cgroup."""
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def read(self, file: str) -> int:
        """An integer file of the cgroup (e.g. memory.max_usage_in_bytes); 0 when the cgroup is gone."""
        try:
            return int((self.path / file).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return 0

    def usage(self) -> tuple[int, int]:
        """(bytes in use now, peak bytes since creation), page cache included."""
        return self.read("memory.usage_in_bytes"), self.read("memory.max_usage_in_bytes")

    def oom_kills(self) -> int:
        """How many processes the OOM killer stopped in this cgroup."""
        try:
            lines = (self.path / "memory.oom_control").read_text().splitlines()
        except FileNotFoundError:
            return 0
        return next((int(line.split()[1]) for line in lines if line.startswith("oom_kill ")), 0)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process left in the cgroup (orphaned kernels, terminals) and wait until it is empty."""
        kill_until_gone(self.pids, timeout)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup (and the hub's folder once it holds no other cgroup)."""
        self.kill()
        for folder in (self.path, self.path.parent):
            try:
                folder.rmdir()
            except (FileNotFoundError, OSError):
                break


def check(mechanism: str, fs: Path = CGROUP_FS, proc: Path = PROC) -> None:
    """Raise LimitError unless MECHANISM can limit memory here (cgroup-v1: a probe cgroup is made and removed)."""
    if mechanism == "systemd":
        if not pid1_is_systemd(proc):
            raise LimitError("--limits systemd needs systemd as init (PID 1), and this machine has none")
        try:
            import systemdspawner  # noqa: F401
        except ImportError:
            raise LimitError("--limits systemd needs jupyterhub-systemdspawner: .venv/bin/pip install "
                             "-r requirements.txt")
        return
    if mechanism != "cgroup-v1":
        raise LimitError(f"unknown limit mechanism {mechanism!r}")
    if not (fs / "memory" / "memory.limit_in_bytes").is_file():
        raise LimitError(why_not(fs, proc))
    probe = Cgroup.for_user(f"probe-{os.getpid()}", fs, proc)
    try:
        probe.create(256 << 20)
        if probe.read("memory.limit_in_bytes") != 256 << 20:
            raise LimitError(f"{probe.path}: the memory limit written did not hold")
    except OSError as error:
        raise LimitError(f"cannot create a memory cgroup at {probe.path.parent} ({error.strerror}); "
                         "the hub must run as root with the cgroup file system writable")
    finally:
        probe.remove()


def kill_until_gone(pids: Callable[[], list[int]], timeout: float = 10.0) -> None:
    """SIGKILL every process ``pids()`` lists, again and again, until it lists none or ``timeout`` s passed."""
    deadline = time.monotonic() + timeout
    while (found := pids()) and time.monotonic() < deadline:
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
