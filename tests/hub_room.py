"""A real room for the tests (tools/hub/harness.py: serve.py on a free port of 127.0.0.1, state in a temporary
folder, everything removed at the end), and when to skip.

Needs Linux, root (the hub creates a Unix user per participant), useradd, the cgroup v1 memory controller and
npm once (configurable-http-proxy). Without them the tests are skipped with the reason; in CI
(SELFEXTEND_REQUIRE_BROWSER=1, as root) a skip is a failure.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "tools" / "hub"
sys.path.insert(0, str(HUB))
import limits  # noqa: E402
from harness import Hub  # noqa: E402,F401  (the tests' room)

REQUIRED = os.environ.get("SELFEXTEND_REQUIRE_BROWSER") == "1" and hasattr(os, "geteuid") and os.geteuid() == 0


def missing(reason: str):
    """Skip (or, in CI as root, fail) with what is missing."""
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def check_requirements() -> None:
    """Skip unless this machine can run a room with limits."""
    if not sys.platform.startswith("linux"):
        missing("the room server runs on Linux")
    if os.geteuid() != 0:
        pytest.skip("the room tests need root (the hub creates a Unix user per participant)")
    if shutil.which("useradd") is None:
        missing("useradd is missing (Debian: apt-get install passwd)")
    if not (limits.CGROUP_FS / "memory" / "memory.limit_in_bytes").is_file():
        missing(f"the cgroup v1 memory controller is not mounted: {limits.why_not()}")
    if shutil.which("npm") is None and not (HUB / "node_modules" / ".package-lock.json").exists():
        missing("npm is needed once for configurable-http-proxy: apt-get install npm")


def wait_until(condition, timeout: float, what: str, every: float = 1.0):
    """Poll CONDITION until it returns something true; AssertionError naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} did not happen in {timeout:.0f} s")


def healthy(url: str) -> bool:
    """Whether the hub answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/hub/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False
