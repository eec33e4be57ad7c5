"""`make site` shows the committed notebooks and figures, not the working tree (tools/site/source.py).

A throwaway git repository with one notebook, its solutions and a figure is committed, then edited the
way a participant's JupyterLab edits it (an answer autosaved, outputs cleared, a new notebook, a redrawn
figure); the site built from it (in this process, no browser, no npm) must show the committed bytes.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_PNG = b"\x89PNG committed figure"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def load_build():
    """tools/site/build.py as a module (it puts tools/site on sys.path for its own imports)."""
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "tools" / "site" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(title: str, output: str | None) -> str:
    """A one-heading, one-code-cell notebook whose cell printed `output` (no outputs when None)."""
    outputs = [] if output is None else [{"output_type": "stream", "name": "stdout", "text": [output + "\n"]}]
    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": [f"# {title}"]},
             {"cell_type": "code", "id": "answer", "metadata": {}, "execution_count": 1 if output else None,
              "source": ["print('answer')"], "outputs": outputs}]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false",
                           *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed mini repository, then edited in its working tree."""
    repo = tmp_path / "repo"
    files = {
        "README.md": "# mini\n\n## Gallery\n\n| [![committed alt](figures/demo.png)](notebooks/01_demo.ipynb) | "
                     "COMMITTED_CAPTION |\n",
        "notebooks/01_demo.ipynb": notebook("01 · Committed title", "COMMITTED_OUTPUT"),
        "notebooks/solutions/01_demo_solutions.ipynb": notebook("01 · Solutions", "COMMITTED_SOLUTION"),
        "notebooks/WORKSHOP.md": "# Guide\n\nCOMMITTED_GUIDE\n",
        "figures/demo.png": COMMITTED_PNG,
        "figures/numbers.csv": "a,b\n",
    }
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "committed")
    # what a participant's session leaves on disk
    (repo / "notebooks/01_demo.ipynb").write_text(notebook("01 · Edited title", "WORKING_TREE_ANSWER"))
    (repo / "notebooks/solutions/01_demo_solutions.ipynb").write_text(notebook("01 · Solutions", None))
    (repo / "notebooks/02_mine.ipynb").write_text(notebook("02 · My own", "UNTRACKED_OUTPUT"))
    (repo / "notebooks/WORKSHOP.md").write_text("# Guide\n\nEDITED_GUIDE\n")
    (repo / "figures/demo.png").write_bytes(b"\x89PNG redrawn by a half-run notebook")
    (repo / "figures/extra.png").write_bytes(b"\x89PNG untracked")
    (repo / "README.md").write_text((repo / "README.md").read_text().replace("COMMITTED_CAPTION", "EDITED_CAPTION"))
    return repo


def site_text(site: Path) -> str:
    """Every HTML file of a built site, concatenated."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html")))


def test_site_shows_the_committed_files_not_the_working_tree(repo: Path):
    build = load_build()
    source, note = build.open_source(repo)
    site = repo / "site"
    rebuilt, total = build.build(source, site, jobs=1)
    assert (rebuilt, total) == (3, 3)  # slides of 01, pages of 01 and of its solutions; nothing of 02_mine
    html = site_text(site)
    for committed in ("COMMITTED_OUTPUT", "COMMITTED_SOLUTION", "Committed title", "COMMITTED_CAPTION",
                      "COMMITTED_GUIDE"):
        assert committed in html, committed
    for edited in ("WORKING_TREE_ANSWER", "Edited title", "UNTRACKED_OUTPUT", "EDITED_CAPTION", "EDITED_GUIDE",
                   "02_mine"):
        assert edited not in html, edited
    assert sorted(p.relative_to(site).as_posix() for p in (site / "figures").iterdir()) == ["figures/demo.png"]
    assert (site / "figures/demo.png").read_bytes() == COMMITTED_PNG
    assert not (site / "notebooks/02_mine.html").exists()
    assert "solutions/01_demo_solutions.html" in (site / "notebooks/01_demo.html").read_text(encoding="utf-8")
    # the one line says which commit, and names what it left out
    commit = git(repo, "rev-parse", "HEAD").strip()
    assert note.startswith(f"site/: built from commit {commit[:7]}") and "\n" not in note
    for left_out in ("notebooks/01_demo.ipynb", "figures/demo.png", "README.md"):
        assert left_out in note, left_out


def test_committing_the_edit_is_what_publishes_it(repo: Path):
    build = load_build()
    site = repo / "site"
    build.build(build.open_source(repo)[0], site, jobs=1)
    git(repo, "add", "notebooks/01_demo.ipynb")
    git(repo, "commit", "-q", "-m", "the new answer")
    source, note = build.open_source(repo)
    rebuilt, _ = build.build(source, site, jobs=1)
    assert rebuilt == 2  # the page and the slides of 01 (its solutions did not change)
    page = (site / "notebooks/01_demo.html").read_text(encoding="utf-8")
    assert "WORKING_TREE_ANSWER" in page and "COMMITTED_OUTPUT" not in page
    assert "notebooks/01_demo.ipynb" not in note


def test_outside_git_the_working_tree_is_used_and_said(repo: Path, tmp_path: Path):
    build = load_build()
    plain = tmp_path / "archive"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    source, note = build.open_source(plain)
    assert source.commit is None and "not a git checkout" in note and "\n" not in note
    build.build(source, plain / "site", jobs=1)
    html = site_text(plain / "site")
    assert "WORKING_TREE_ANSWER" in html and "UNTRACKED_OUTPUT" in html and "COMMITTED_OUTPUT" not in html
    working, said = build.open_source(repo, working_tree=True)  # --working-tree, inside a checkout
    assert working.commit is None and "--working-tree" in said
