"""Solutions come from one place: the cell tagged ``solution:qN`` in the solutions notebook.

nbval already runs those notebooks, so a solution shown by ``q3.solution()`` is code that is known
to work. The notebooks folder is found from the working directory (or a parent of it) or beside
the package's own repository, like ``selfextend.tiny.checkpoints_dir``.
"""
from __future__ import annotations

import json
from pathlib import Path


def notebooks_dir() -> Path:
    """notebooks/ of this repository (the folder holding solutions/), searched from the cwd upwards."""
    here = Path.cwd()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[2]):
        for candidate in (folder / "notebooks", folder):
            if (candidate / "solutions").is_dir() and any(candidate.glob("[0-9][0-9]_*.ipynb")):
                return candidate
    raise FileNotFoundError("no notebooks/ folder with solutions/ found: run from inside the repository")


def notebook_path(notebook: str, solutions: bool = False) -> Path:
    """The learner (or solutions) notebook whose name starts with ``notebook`` ("01")."""
    folder = notebooks_dir() / "solutions" if solutions else notebooks_dir()
    pattern = f"{notebook}_*_solutions.ipynb" if solutions else f"{notebook}_*.ipynb"
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no notebook {folder.name}/{pattern}")
    return found[0]


def tag(number: int) -> str:
    """The cell tag of exercise ``number``'s solution."""
    return f"solution:q{number}"


def tagged_cells(path: Path) -> dict[str, tuple[str, str]]:
    """tag -> (the nearest Markdown cell above: the exercise's text, the cell's code) for every solution:qN cell."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    found = {}
    for index, cell in enumerate(cells):
        for name in cell.get("metadata", {}).get("tags", []):
            if name.startswith("solution:"):
                above = next((c for c in reversed(cells[:index]) if c["cell_type"] == "markdown"), None)
                text = "".join(above["source"]) if above else ""
                found[name] = (text.strip(), "".join(cell["source"]).strip())
    return found
