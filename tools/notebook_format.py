"""The form every notebook is committed in, and what JupyterLab saves: only what a person wrote and ran.

A learner who opens a notebook, runs it all and saves it must leave `git status` clean. What JupyterLab
would otherwise add on save, and how it is removed (`clean_notebook`):

* notebook metadata: only ``kernelspec`` and ``language_info``, the latter without ``version`` (the
  Python version of whoever ran it last); no ``widgets`` state, no editor or extension keys;
* cell metadata: only ``tags`` (``solution:qN`` marks a worked solution); no ``execution`` timestamps
  (JupyterLab's recordTiming, nbconvert's record_timing), ``collapsed``, ``scrolled``, ``jupyter``, ...;
* outputs: consecutive stream outputs of one stream merged into one, as JupyterLab's output area merges
  them (a kernel sends one message per flush), ``\\r`` and ``\\b`` resolved as a terminal shows them;
* a widget's output: its ``model_id`` (random in every kernel) replaced by one derived from the cell id,
  so an executed widget cell saves the same bytes every time. The saved id names no live widget, as in
  any notebook reopened after its kernel stopped: run the cell again to get the live widget back.

Used by the Jupyter server's pre-save hook (``jupyter_server_config.py`` at the repository root, which
`make lab` and the no-make command pass with ``--config``), by `make figures` after nbconvert rewrites the
notebooks, and by ``tests/test_notebook_metadata.py``. ``python tools/notebook_format.py FILE.ipynb ...``
rewrites files in that form (nbformat's JSON layout, as Jupyter writes it). Standard library only, except
the file-level functions (that command), which need nbformat.
"""
from __future__ import annotations

import copy
import hashlib
import re
import sys
from pathlib import Path

NOTEBOOK_METADATA = ("kernelspec", "language_info")  # kept, in that order of importance; nothing else
LANGUAGE_INFO_DROPPED = ("version",)  # the kernel's Python version: differs from laptop to laptop
CELL_METADATA = ("tags",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
_BACKSPACE = re.compile("[^\n]\x08")  # a character, then a backspace


def _text(value) -> str:
    """A notebook string field, stored either as one string or as a list of lines."""
    return "".join(value) if isinstance(value, list) else value


def _terminal_text(text: str) -> str:
    """``text`` as a terminal shows it: a character before ``\\b`` and a line's text before ``\\r`` erased."""
    while True:
        shorter = _BACKSPACE.sub("", text)
        if shorter == text:
            break
        text = shorter
    return _CARRIAGE_RETURN.sub("", text)


def merged_streams(outputs: list[dict]) -> list[dict]:
    """The outputs with every run of consecutive stream outputs of one name (stdout, stderr) merged into one."""
    merged: list[dict] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] = _text(previous["text"]) + _text(output["text"])
        else:
            merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            shown = _terminal_text(_text(output["text"]))
            if shown != _text(output["text"]):  # else keep its layout (a string, or a list of lines)
                output["text"] = shown
    return merged


def stable_model_id(cell_id: str, index: int) -> str:
    """A widget model id (32 hex digits, like ipywidgets' own) that depends only on the cell and output."""
    return hashlib.sha1(f"{cell_id}/{index}".encode()).hexdigest()[:32]


def clean_notebook(notebook: dict) -> dict:
    """A copy of ``notebook`` (nbformat 4, as a dict) in the committed form: see the module docstring."""
    notebook = copy.deepcopy(dict(notebook))
    metadata = notebook.get("metadata", {})
    kept = {key: metadata[key] for key in NOTEBOOK_METADATA if key in metadata}
    if "language_info" in kept:
        kept["language_info"] = {key: value for key, value in kept["language_info"].items()
                                 if key not in LANGUAGE_INFO_DROPPED}
    notebook["metadata"] = kept
    for position, cell in enumerate(notebook.get("cells", [])):
        cell["metadata"] = {key: value for key, value in cell.get("metadata", {}).items() if key in CELL_METADATA}
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = merged_streams(cell.get("outputs", []))
        for index, output in enumerate(cell["outputs"]):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if isinstance(view, dict) and "model_id" in view:
                view["model_id"] = stable_model_id(cell.get("id", f"#{position}"), index)
    return notebook


def pre_save_hook(model: dict, **kwargs) -> None:
    """Jupyter's ContentsManager.pre_save_hook: a notebook is saved in the committed form."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        model["content"] = clean_notebook(model["content"])


def committed_text(text: str) -> str:
    """The text of an .ipynb file in the committed form, laid out as Jupyter writes files (nbformat)."""
    import nbformat  # only the file-level functions need it

    cleaned = nbformat.from_dict(clean_notebook(nbformat.reads(text, as_version=4)))
    out = nbformat.writes(cleaned)
    return out if out.endswith("\n") else out + "\n"  # as nbformat.write ends a file


def rewrite(path: Path) -> bool:
    """Rewrite one .ipynb file in the committed form; True if it changed."""
    before = path.read_text(encoding="utf-8")
    after = committed_text(before)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def main(argv: list[str] | None = None) -> int:
    """Rewrite the notebooks given on the command line; print the ones that changed."""
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python tools/notebook_format.py NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for path in paths:
        if rewrite(path):
            print(f"rewritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
