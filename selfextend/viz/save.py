"""One way to write figures: the package style and byte-reproducible PNG + SVG files in figures/."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

STYLE_FILE = Path(__file__).with_name("selfextend.mplstyle")
# Fixed metadata: no date, no software version, so the same figure gives the same bytes.
_PNG_METADATA = {"Software": None}
_SVG_METADATA = {"Date": None, "Creator": None}


@contextmanager
def style():
    """Context manager applying the package's one matplotlib style (fonts, sizes, svg.hashsalt)."""
    with plt.style.context(str(STYLE_FILE)):
        yield


def use_style() -> None:
    """Apply the package style globally (notebooks call this once at the top)."""
    plt.style.use(str(STYLE_FILE))


def figures_dir() -> Path:
    """figures/ of this repository: $SELFEXTEND_FIGURES, else the nearest figures/ beside a pyproject.toml."""
    if os.environ.get("SELFEXTEND_FIGURES"):
        return Path(os.environ["SELFEXTEND_FIGURES"])
    for folder in (Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[2]):
        if (folder / "pyproject.toml").is_file() and (folder / "selfextend").is_dir():
            return folder / "figures"
    raise FileNotFoundError("no figures/ folder found: run from inside the repository or set SELFEXTEND_FIGURES")


def save_figure(fig: Figure, name: str, directory: str | os.PathLike | None = None) -> list[Path]:
    """Write ``fig`` as NAME.png and NAME.svg, byte-reproducibly; returns the two paths."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem such as 'fig3_selfextend_positions', got {name!r}")
    out = Path(directory) if directory is not None else figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fixed = {"svg.hashsalt": "selfextend", "svg.fonttype": "path", "savefig.bbox": "tight",
             "savefig.dpi": 120, "savefig.facecolor": "white"}
    with matplotlib.rc_context(fixed):
        fig.savefig(paths[0], metadata=_PNG_METADATA)
        fig.savefig(paths[1], metadata=_SVG_METADATA)
    return paths
