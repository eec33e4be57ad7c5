"""Choosing a participant's server port so that nothing else can take it before the server binds it.

JupyterHub's LocalProcessSpawner asks the kernel for a free port (bind to port 0, close) and hands it to the
server, which binds it seconds later; its single-user server never retries another port. The kernel takes the
same ephemeral range for every outgoing connection (the proxy's, the browsers' websockets, the hub's API
calls), so in a room where 30 servers start at once one of those connections can hold the port when the
server binds it, and that server fails to start (jupyterhub/jupyterhub#3005, #1830). The room load test met
it once: one of 10 servers "stopped while starting". So the room picks ports below the ephemeral range, where
the kernel never puts an outgoing connection, skips those its other servers were given, and checks the port
is free. The hub's own internal ports come from the same pool.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20000  # below: well-known services' registered ports are denser


def ephemeral_range(path: Path = EPHEMERAL) -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default 32768-60999 if unknown)."""
    try:
        low, high = (int(v) for v in path.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port(ip: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now, as the kernel picks it (from the ephemeral range)."""
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return probe.getsockname()[1]


def is_free(port: int, ip: str = "127.0.0.1") -> bool:
    """Whether a listening socket could bind PORT on IP now (as tornado does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def candidates(path: Path = EPHEMERAL) -> range:
    """Ports a server may get: from LOWEST up to the ephemeral range (or above it, when it starts too low)."""
    low, high = ephemeral_range(path)
    if low - LOWEST >= 1000:
        return range(LOWEST, low)
    return range(high + 1, 65536)  # a machine whose ephemeral range starts low: take the ports above it


def pick(taken: set[int], ip: str = "127.0.0.1", path: Path = EPHEMERAL, rng: random.Random | None = None) -> int:
    """A free port outside the ephemeral range and not in TAKEN; RuntimeError when none is left."""
    pool = candidates(path)
    rng = rng or random.Random()
    for port in rng.sample(pool, len(pool)):
        if port not in taken and is_free(port, ip):
            return port
    raise RuntimeError(f"no free port in {pool.start}-{pool.stop - 1} for a participant's server")
