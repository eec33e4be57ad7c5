"""The workshop kit stays honest: the schedule names real notebooks and exercises, its minutes add
up, WORKSHOP.md shows the schedule's own tables, and the set-up commands exist and report failures."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from selfextend.exercises import catalog, notebooks

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "notebooks" / "WORKSHOP.md"


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_check_setup_reports_and_fails(tmp_path):
    """The pre-flight prints ✓ lines, and a ✗ (here: an impossible disk requirement) gives exit code 1."""
    script = ROOT / "tools" / "check_setup.py"
    ok = subprocess.run([sys.executable, str(script), "--no-notebook"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ Python" in ok.stdout and "✓ torch" in ok.stdout and "✓ free disk" in ok.stdout
    bad = subprocess.run([sys.executable, str(script), "--no-notebook", "--min-free-gib", "1e9"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "✗ free disk" in bad.stdout and "free some space" in bad.stdout


def test_check_setup_runs_a_notebook(monkeypatch):
    check_setup = load_tool("check_setup")
    ok, message = check_setup.check_notebook(timeout=300)
    assert ok, message


def test_make_targets_exist_and_wheelhouse_covers_setup():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^check-setup:", makefile, re.M) and re.search(r"^wheelhouse:", makefile, re.M)
    dry = subprocess.run(["make", "-n", "wheelhouse", "PIP_ARGS=--index-url X"], cwd=ROOT, capture_output=True, text=True)
    if dry.returncode != 0:
        pytest.skip(f"make not available: {dry.stderr.strip()}")
    # every --no-deps install of `make setup` (except the package itself) is downloaded too
    for package in re.findall(r"pip install .*--no-deps (\S+==\S+)", makefile):
        assert package in dry.stdout, package
    assert "-r requirements.txt" in dry.stdout and "--index-url X" in dry.stdout and "setuptools" in dry.stdout


def test_readme_links_the_workshop():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Teaching with this repository"):]
    for needle in ("notebooks/WORKSHOP.md", "make check-setup", "make wheelhouse", "make site"):
        assert needle in section, needle
