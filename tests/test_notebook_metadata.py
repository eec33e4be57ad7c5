"""Every notebook carries the metadata JupyterLab writes, so opening one does not mark it modified,
and nothing volatile (timestamps, UI state), so running one does not either."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted([*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("solutions/*.ipynb")])
IDS = [p.relative_to(NOTEBOOKS).as_posix() for p in PATHS]
# What JupyterLab 4 with ipykernel writes for the "Python 3 (ipykernel)" kernel.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# The cell metadata the repository uses on purpose: "tags" (solution:qN marks a worked solution). Everything
# else is left by a tool and changes from run to run: "execution" (timestamps written by nbconvert's
# record_timing, or by JupyterLab when its recordTiming setting is on), "collapsed" / "scrolled" / "jupyter"
# (output and source folding), "editable", "deletable", "ExecuteTime" (classic-notebook extension), ...
CELL_METADATA = {"tags"}
# The notebook metadata: the kernel only, no "widgets" (ipywidgets state), no "toc", no editor settings.
NOTEBOOK_METADATA = {"kernelspec", "language_info"}


def load(path: Path) -> dict:
    """The notebook's JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def volatile_cell_metadata(notebook: dict) -> dict[str, list[str]]:
    """Cell id -> the metadata keys outside CELL_METADATA, for every cell that has some."""
    found = {}
    for index, cell in enumerate(notebook["cells"]):
        extra = sorted(set(cell.get("metadata", {})) - CELL_METADATA)
        if extra:
            found[cell.get("id", f"#{index}")] = extra
    return found


def test_there_are_notebooks():
    assert len(PATHS) >= 2


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_kernelspec_is_what_jupyterlab_writes(path):
    metadata = load(path)["metadata"]
    assert metadata.get("kernelspec") == KERNELSPEC
    assert metadata.get("language_info", {}).get("name") == "python"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_cells_carry_no_volatile_metadata(path):
    found = volatile_cell_metadata(load(path))
    assert not found, (f"{path.name}: cell metadata other than {sorted(CELL_METADATA)} (execute with "
                       f"--ExecutePreprocessor.record_timing=False, or delete the keys): {found}")


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_metadata_is_the_kernel_only(path):
    extra = sorted(set(load(path)["metadata"]) - NOTEBOOK_METADATA)
    assert not extra, f"{path.name}: notebook metadata other than {sorted(NOTEBOOK_METADATA)}: {extra}"


def test_volatile_metadata_is_found():
    notebook = {"cells": [{"id": "a", "metadata": {"tags": ["solution:q1"]}},
                          {"id": "b", "metadata": {"execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}}},
                          {"id": "c", "metadata": {"collapsed": False, "scrolled": True}}, {"metadata": {}}]}
    assert volatile_cell_metadata(notebook) == {"b": ["execution"], "c": ["collapsed", "scrolled"]}
