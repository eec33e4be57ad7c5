"""The room's settings: who may sign in, where the hub listens, the limits; one JSON file in the state folder.

serve.py checks the teacher's input and writes <state>/room.json; jupyterhub_config.py reads it back in the hub.
Passwords are never written there: they reach the hub through the environment (see auth.py).
Standard library only.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "room.json"  # inside the state folder
NAME = re.compile(r"[a-z][a-z0-9_-]{0,19}")  # a participant's sign-in name (the system user adds a prefix)
PREFIX = re.compile(r"[a-z][a-z0-9_-]{0,11}")
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", re.I)
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)", re.I)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (exit code 2), without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print the problem in one line and exit with code 2."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


class RoomError(ValueError):
    """A setting the teacher gave that the room cannot use (serve.py prints it in one line, exit code 2)."""


@dataclass
class Room:
    """Everything the hub needs to know about the room (no secrets)."""

    participants: list[str]
    admin: str = "teacher"
    ip: str = "127.0.0.1"
    port: int = 8000
    state: str = str(ROOT / "hub-state")
    memory_limit: int | None = 2 << 30  # bytes per participant, None: no limit
    limits: str = "cgroup-v1"  # how the memory limit is enforced: cgroup-v1, systemd or none
    cull_idle: int = 3600  # seconds without activity before a server is stopped; 0: never
    cull_kernels: int = 1800  # seconds a kernel may sit idle (tab open or not) before it is shut down; 0: never
    threads: int = 1  # OMP/MKL/torch threads of each participant's kernels
    terminals: bool = True
    user_prefix: str = "room-"  # system user of participant NAME: PREFIX + NAME
    model_cache: str | None = None  # SELFEXTEND_CACHE shared by every participant (serve.py --share-smollm2)
    runtime: str = "/run/selfextend-hub"  # one private folder per participant for kernel sockets (short paths)
    hub_port: int = 8081  # the hub's own API port and the proxy's API port, both on 127.0.0.1
    proxy_api_port: int = 8001
    ssl_cert: str | None = None
    ssl_key: str | None = None
    repo: str = str(ROOT)
    venv: str = str(ROOT / ".venv")

    @property
    def users(self) -> list[str]:
        """Every name that may sign in: the participants and the teacher."""
        return [*self.participants, self.admin]

    def system_user(self, name: str) -> str:
        """The Unix account that runs NAME's server."""
        return self.user_prefix + name

    def homes(self) -> Path:
        """The folder holding one home per participant."""
        return Path(self.state) / "homes"

    def runtime_dir(self, name: str) -> Path:
        """NAME's JUPYTER_RUNTIME_DIR: kernels' Unix sockets need a path under 108 bytes, which homes may exceed."""
        return Path(self.runtime) / self.system_user(name)

    def url(self) -> str:
        """The address the hub serves, as a participant types it (for 0.0.0.0: this machine's address)."""
        scheme = "https" if self.ssl_cert else "http"
        host = self.ip if self.ip not in ("0.0.0.0", "::") else lan_address()
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    def save(self) -> Path:
        """Write room.json into the state folder (readable by root only)."""
        path = Path(self.state) / SETTINGS
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1) + "\n")
        temporary.chmod(0o600)
        os.replace(temporary, path)
        return path

    @classmethod
    def load(cls, state: str | os.PathLike) -> "Room":
        """The settings serve.py saved in STATE/room.json."""
        return cls(**json.loads((Path(state) / SETTINGS).read_text()))


def parse_names(text: str) -> list[str]:
    """Sign-in names from a roster (one a line or comma-separated; # starts a comment), lower-cased, checked."""
    names = []
    for line in text.splitlines():
        for name in line.split("#", 1)[0].split(","):
            name = name.strip().lower()
            if not name:
                continue
            if not NAME.fullmatch(name):
                raise RoomError(f"participant name {name!r}: use 1-20 of a-z, 0-9, - and _, starting with a letter")
            if name in names:
                raise RoomError(f"participant name {name!r} appears twice in the roster")
            names.append(name)
    return names


def parse_size(text: str) -> int | None:
    """Bytes from '2G', '1536M', '2GiB' or '0'/'none' (no limit: None)."""
    if text.strip().lower() in ("none", "0", "off"):
        return None
    match = SIZE.fullmatch(text.strip())
    if not match:
        raise RoomError(f"memory limit {text!r}: write it like 2G, 1536M or none")
    number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * 1024 ** "KMGT".index(unit) * 1024) if unit else int(number)
    if size < 256 << 20:
        raise RoomError(f"memory limit {text!r} is below 256M: a participant's JupyterLab alone needs about that")
    return size


def parse_duration(text: str, option: str = "--cull-idle") -> int:
    """Seconds from '90m', '2h', '45s' or '0' (never); RoomError naming OPTION otherwise."""
    match = DURATION.fullmatch(text.strip())
    if not match:
        raise RoomError(f"{option} {text!r}: an idle time like 60m, 2h, 90s or 0 (never cull)")
    seconds = float(match.group(1)) * {"": 60, "s": 1, "m": 60, "h": 3600}[match.group(2).lower()]
    return int(seconds)


def check_address(ip: str) -> str:
    """A literal IP address to bind to (no host names: the room must know exactly where it listens)."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise RoomError(f"--ip {ip!r} is not an IP address (e.g. 127.0.0.1, 0.0.0.0 or this machine's LAN address)")


def lan_address() -> str:
    """This machine's address on its default route (no packet is sent), else 127.0.0.1."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only selects the outgoing interface
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def is_public(ip: str) -> bool:
    """Whether binding to IP exposes the hub beyond loopback and private networks."""
    address = ipaddress.ip_address(ip if ip not in ("0.0.0.0", "::") else lan_address())
    return not (address.is_loopback or address.is_private or address.is_link_local)
