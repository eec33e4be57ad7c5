"""Every notebook carries the metadata JupyterLab writes, so opening one does not mark it modified,
and nothing volatile (timestamps, UI state, the kernel's Python version), so running one and saving it
does not either: the repository's Jupyter settings (jupyter_server_config.py, which `make lab` and the
no-make command pass) save a notebook in the committed form of tools/notebook_format.py. The last test
runs notebook 01 through a kernel and saves it through a real JupyterLab server, started as the README
starts it: the file it writes is the committed one, byte for byte."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tool_modules import load_tool

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
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


notebook_format = load_tool("notebook_format")


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_committed_in_the_form_jupyterlab_saves(path):
    text = path.read_text(encoding="utf-8")
    assert "version" not in json.loads(text)["metadata"].get("language_info", {}), "the kernel's Python version"
    assert notebook_format.committed_text(text) == text, (
        f"{path.name} is not in the form a save writes: python tools/notebook_format.py {path.relative_to(ROOT)}")


def test_clean_notebook_keeps_what_was_typed_and_run():
    stream = lambda text: {"output_type": "stream", "name": "stdout", "text": text}
    view = {"model_id": "0f3c9d", "version_major": 2, "version_minor": 0}
    notebook = {
        "metadata": {"kernelspec": KERNELSPEC, "widgets": {"state": {}}, "toc": {},
                     "language_info": {"name": "python", "version": "3.12.4", "mimetype": "text/x-python"}},
        "cells": [{"cell_type": "code", "id": "a", "source": "print(1)",
                   "metadata": {"tags": ["solution:q1"], "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"},
                                "collapsed": True, "jupyter": {"outputs_hidden": True}},
                   "outputs": [stream("forward 1/2\n"), stream(["done\n"]), {"output_type": "stream", "name": "stderr",
                               "text": "50%\r100%\n"}, stream("last\n"),
                               {"output_type": "display_data", "metadata": {}, "data": {
                                   notebook_format.WIDGET_VIEW: dict(view), "text/plain": "a slider"}}]},
                  {"cell_type": "markdown", "id": "b", "source": "# x", "metadata": {"editable": False}}],
    }
    clean = notebook_format.clean_notebook(notebook)
    assert notebook["metadata"]["language_info"]["version"] == "3.12.4"  # a copy: the argument is left alone
    assert clean["metadata"] == {"kernelspec": KERNELSPEC,
                                 "language_info": {"name": "python", "mimetype": "text/x-python"}}
    assert [c["metadata"] for c in clean["cells"]] == [{"tags": ["solution:q1"]}, {}]
    outputs = clean["cells"][0]["outputs"]
    assert [o.get("text") for o in outputs] == ["forward 1/2\ndone\n", "100%\n", "last\n", None]  # as JupyterLab shows
    model_id = outputs[-1]["data"][notebook_format.WIDGET_VIEW]["model_id"]
    assert model_id == notebook_format.stable_model_id("a", 3) != view["model_id"] and len(model_id) == 32
    assert notebook_format.clean_notebook(clean) == clean  # the committed form is a fixed point
    model = {"type": "notebook", "content": notebook}
    notebook_format.pre_save_hook(model=model, path="x.ipynb", contents_manager=None)
    assert model["content"] == clean
    untouched = {"type": "file", "content": "text"}
    notebook_format.pre_save_hook(model=untouched, path="x.txt", contents_manager=None)
    assert untouched == {"type": "file", "content": "text"}


CONFIG = "--config=jupyter_server_config.py"


def test_both_ways_of_starting_jupyterlab_pass_the_settings():
    """Jupyter reads no config file from the current folder, so `make lab` and the no-make command name it."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile[makefile.index("\nlab:"):].split("\n\n")[0]
    assert '--config="$(CURDIR)/jupyter_server_config.py"' in recipe, recipe
    assert CONFIG in load_tool("setup_env").LAB_ARGS.split()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"python -m jupyterlab {CONFIG} --LabApp.default_url=/lab/tree/notebooks" in readme
    assert f"-m jupyterlab {CONFIG}" in (NOTEBOOKS / "WORKSHOP.md").read_text(encoding="utf-8")
    assert (ROOT / "jupyter_server_config.py").is_file()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
    """One call of the Jupyter server's REST API with token authentication; the JSON reply."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"{}")


def test_run_all_and_save_in_jupyterlab_leaves_the_committed_file(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    source = NOTEBOOKS / "01_rope_relative_positions.ipynb"
    # Run All: a fresh kernel executes every cell (figures go to a scratch folder, not figures/)
    monkeypatch.setenv("SELFEXTEND_FIGURES", str(tmp_path / "figures"))
    notebook = nbformat.read(source, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    # ... plus what a front end and a participant's machine add
    notebook.metadata.language_info["version"] = "3.99.1"
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    notebook.cells[0].metadata["jupyter"] = {"source_hidden": True}
    assert "execution" in notebook.cells[2].metadata  # the run's timestamps: the hook has work to do
    # JupyterLab as the README starts it (the no-make command, from the repository), serving a scratch folder
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", *load_tool("setup_env").LAB_ARGS.split(), "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={tmp_path}", f"--IdentityProvider.token={token}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                api(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
                time.sleep(0.5)
        api(f"{base}/api/contents/{source.name}", token, "PUT",
            {"type": "notebook", "format": "json", "content": notebook})
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    saved = (tmp_path / source.name).read_bytes()
    assert saved == source.read_bytes(), "Run All + save changed notebook 01: see tools/notebook_format.py"


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
