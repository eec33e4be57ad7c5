"""Pre-flight check for a workshop participant's laptop: `make check-setup` (or python tools/check_setup.py).

Each line starts with ✓ (fine) or ✗ (and what to do). The exit code is 1 if any line is ✗, so an
instructor can also run it in a loop over machines. Needs nothing beyond the standard library to
start; it reports torch, the package and the notebook tools as it finds them.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)
PINNED_TORCH = "2.13.0"
NOTEBOOK = ROOT / "notebooks" / "01_rope_relative_positions.ipynb"
SETUP = "run `make setup` in the repository (see README, 'Two commands')"


def check_python() -> tuple[bool, str]:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] >= MIN_PYTHON:
        return True, f"Python {version}"
    return False, (f"Python {version} is too old: install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer "
                   f"(python.org or your package manager), then `make setup PYTHON=python3.12`")


def check_torch() -> tuple[bool, str]:
    try:
        import torch
    except Exception as error:  # ImportError, or a broken binary (OSError)
        return False, f"torch does not import ({type(error).__name__}: {error}): {SETUP}"
    version = torch.__version__.split("+")[0]
    if version != PINNED_TORCH:
        return False, (f"torch {torch.__version__} found; the notebooks are tested with {PINNED_TORCH}: {SETUP} "
                       "(inside the repository's .venv)")
    x = torch.ones(2, 2) @ torch.ones(2, 2)
    if float(x.sum()) != 8.0:
        return False, "torch imports but computes wrong numbers: reinstall it (`make clean setup`)"
    return True, f"torch {torch.__version__} (CPU threads: {torch.get_num_threads()})"


def check_package() -> tuple[bool, str]:
    try:
        import selfextend
        from selfextend.exercises import exercises  # noqa: F401
    except Exception as error:
        return False, f"the selfextend package does not import ({type(error).__name__}: {error}): {SETUP}"
    return True, f"selfextend {selfextend.__version__}"


def check_notebook(timeout: int) -> tuple[bool, str]:
    try:
        import nbformat
        from nbclient import NotebookClient
    except Exception as error:
        return False, f"the notebook tools do not import ({type(error).__name__}: {error}): {SETUP}"
    if not NOTEBOOK.is_file():
        return False, f"{NOTEBOOK.relative_to(ROOT)} is missing: clone the whole repository again"
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        previous = os.environ.get("SELFEXTEND_FIGURES")
        os.environ["SELFEXTEND_FIGURES"] = scratch  # the run must not rewrite the committed figures
        try:
            client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(NOTEBOOK.parent)}})
            client.execute()
        except Exception as error:
            first_line = (str(error).strip().splitlines() or [""])[-1][:200]
            return False, (f"notebook {NOTEBOOK.name} did not run ({type(error).__name__}: {first_line}): "
                           f"{SETUP}; if it timed out, close other programs and try again")
        finally:
            if previous is None:
                os.environ.pop("SELFEXTEND_FIGURES", None)
            else:
                os.environ["SELFEXTEND_FIGURES"] = previous
    seconds = time.perf_counter() - start
    return True, f"notebook {NOTEBOOK.name} runs ({seconds:.0f} s)"


def check_disk(min_free_gib: float) -> tuple[bool, str]:
    free = shutil.disk_usage(ROOT).free / 2**30
    if free >= min_free_gib:
        return True, f"free disk: {free:.1f} GiB"
    return False, (f"free disk: {free:.1f} GiB, need {min_free_gib:g} GiB "
                   "(the environment and the notebooks' outputs): free some space")


def check_checkpoints() -> tuple[bool, str]:
    wanted = [ROOT / "checkpoints" / f"tiny_lm_{name}.{ext}" for name in ("base", "passkey") for ext in ("pt", "json")]
    missing = [p.name for p in wanted if not p.is_file()]
    if missing:
        return False, f"checkpoints missing ({', '.join(missing)}): clone the whole repository again (notebooks 05-07 need them)"
    return True, "tiny-model checkpoints present (notebooks 05-07)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check that this machine is ready for the SelfExtend workshop.")
    parser.add_argument("--no-notebook", action="store_true", help="skip running notebook 01 (the slowest check)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per notebook cell (default 300)")
    parser.add_argument("--min-free-gib", type=float, default=2.0, help="free disk space needed, GiB (default 2)")
    args = parser.parse_args(argv)
    if args.timeout < 1 or not args.min_free_gib >= 0:
        parser.error("--timeout must be >= 1 and --min-free-gib >= 0")

    print(f"SelfExtend workshop: set-up check ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)")
    checks = [check_python, check_torch, check_package, check_checkpoints, lambda: check_disk(args.min_free_gib)]
    if not args.no_notebook:
        checks.append(lambda: check_notebook(args.timeout))
    failed = 0
    for check in checks:
        try:
            ok, message = check()
        except Exception as error:  # a check must report, never crash the script
            ok, message = False, f"the check itself failed ({type(error).__name__}: {error})"
        failed += not ok
        print(f"{'✓' if ok else '✗'} {message}", flush=True)
    print("All set: see you at the workshop." if not failed else f"{failed} check(s) failed: see the ✗ lines above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
