"""Resident-memory readings of this process (Linux /proc), for the benchmarks and the long results runs.

The peak resident set size (VmHWM) can be reset to the current RSS by writing "5" to
/proc/self/clear_refs; reading it after a piece of work gives that work's peak.
"""
from __future__ import annotations

import resource
from pathlib import Path


def status_mib(key: str) -> float:
    """A memory line of /proc/self/status (e.g. VmHWM, the peak RSS; VmRSS, the current one) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False where the system does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak RSS in MiB: VmHWM (since the last reset) where /proc has it, else getrusage's lifetime peak."""
    try:
        return status_mib("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
