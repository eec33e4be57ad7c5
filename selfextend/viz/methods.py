"""Pictures of SelfExtend's relatives: position maps in the style of Figure 3, reach, and the tiny-LM table.

The data comes in as arguments (``selfextend.methods.position_map`` gives (values, regions,
attended) for a map); this module imports only the mechanism and the Figure-3 colours.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..positions import causal_mask
from .positions import FUTURE_COLOR, GRID_COLOR, GROUPED_COLOR, NEIGHBOR_COLOR, UNSEEN_COLOR, _as_numpy

THIRD_COLOR = "#9BC59D"  # green: a third region (DCA's inter-chunk positions)
DROPPED_COLOR = "#4D4D4D"  # dark grey: a key the method drops (mask, eviction)
UNSEEN_TEXT = "#B00000"  # red number: a position >= the pretrained length L
_COLORS = ListedColormap([FUTURE_COLOR, DROPPED_COLOR, NEIGHBOR_COLOR, GROUPED_COLOR, THIRD_COLOR])
_NORM = BoundaryNorm(np.arange(-0.5, 5.5), _COLORS.N)
LINE_COLORS = ["#000000", "#1f77b4", "#aec7e8", "#6baed6", "#ff7f0e", "#ffbb78", "#2ca02c",
               "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _number(value: float) -> str:
    """An integer as is, a fraction with one decimal (5.667 -> 5.7)."""
    return str(int(round(value))) if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def plot_position_map(values, regions, attended, *, pretrained_length: int | None = None,
                      title: str | None = None, fontsize: float = 5.5, ax=None) -> Figure:
    """One method's relative positions [n, n]: region 0 orange, 1 blue, 2 green, dropped keys dark, future light.

    Numbers >= ``pretrained_length`` (positions never trained) are written in red.
    """
    values = _as_numpy(values, "values", dtype=np.float64)
    regions = _as_numpy(regions, "regions").astype(np.int64)
    attended = _as_numpy(attended, "attended").astype(bool)
    if not (values.shape == regions.shape == attended.shape):
        raise ValueError(f"values, regions and attended must share one shape, got {values.shape}, "
                         f"{regions.shape}, {attended.shape}")
    if regions.min() < 0 or regions.max() > 2:
        raise ValueError("regions must lie in 0 .. 2")
    causal = causal_mask(*values.shape).numpy()
    cells = np.where(causal, np.where(attended, 2 + regions, 1), 0)
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.6 + 0.28 * values.shape[1], 0.6 + 0.28 * values.shape[0]))
    else:
        fig = ax.figure
    rows, cols = values.shape
    ax.pcolormesh(np.arange(cols + 1), np.arange(rows + 1), cells, cmap=_COLORS, norm=_NORM,
                  edgecolors=GRID_COLOR, linewidth=0.5)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(rows):
        for j in range(cols):
            if cells[i, j] >= 2:
                unseen = pretrained_length is not None and values[i, j] >= pretrained_length
                ax.text(j + 0.5, i + 0.5, _number(values[i, j]), ha="center", va="center", fontsize=fontsize,
                        color=UNSEEN_TEXT if unseen else "black")
    if title is not None:
        ax.set_title(title, fontsize=8)
    return fig


def plot_method_gallery(maps: Mapping[str, tuple], *, columns: int = 4, pretrained_length: int | None = None,
                        title: str | None = None) -> Figure:
    """Every method's map, one panel each: ``maps`` is {title: (values, regions, attended)}."""
    if not maps:
        raise ValueError("maps must hold at least one (values, regions, attended) entry")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    rows = math.ceil(len(maps) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns, 3.4 * rows + 0.7), squeeze=False)
    for ax, (name, (values, regions, attended)) in zip(axes.flat, maps.items()):
        plot_position_map(values, regions, attended, pretrained_length=pretrained_length, title=name, ax=ax)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    handles = [Patch(facecolor=c, edgecolor=GRID_COLOR, label=t) for c, t in (
        (NEIGHBOR_COLOR, "near: ordinary positions"), (GROUPED_COLOR, "far / next chunk"),
        (THIRD_COLOR, "further chunks (DCA)"), (DROPPED_COLOR, "key dropped (mask)"), (FUTURE_COLOR, "future"))]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    if title is not None:
        fig.suptitle(title, fontsize=11)
    top = 1 - 0.55 / fig.get_figheight()
    fig.subplots_adjust(left=0.01, right=0.99, top=top, bottom=0.45 / fig.get_figheight(), wspace=0.06, hspace=0.12)
    return fig


def plot_largest_positions(lengths: Sequence[int], curves: Mapping[str, Sequence[float]], pretrained_length: int,
                           *, title: str | None = None, ax=None, log: bool = True) -> Figure:
    """Largest relative position against N, one line per method (label may carry its closed form).

    ``log``: both axes base 2 (default), or linear ones from 0 (a fine grid of N shows sawtooths).
    """
    lengths = np.asarray(list(lengths), dtype=np.float64)
    if lengths.ndim != 1 or len(lengths) == 0 or (lengths < 1).any():
        raise ValueError("lengths must be a non-empty sequence of positive integers")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.6, 4.6))
    else:
        fig = ax.figure
    top = 0.0
    for k, (label, values) in enumerate(curves.items()):
        values = np.asarray(list(values), dtype=np.float64)
        if values.shape != lengths.shape:
            raise ValueError(f"curves[{label!r}] must have one value per length ({len(lengths)}), got {len(values)}")
        top = max(top, values.max())
        ax.plot(lengths, values, color=LINE_COLORS[k % len(LINE_COLORS)], linewidth=1.6,
                linestyle="-" if k < 8 else "--", label=label)
    ax.axhspan(pretrained_length - 0.5, max(top, pretrained_length) * 1.5, color=UNSEEN_COLOR, alpha=0.15,
               linewidth=0, label=f"never trained (>= L = {pretrained_length})")
    if log:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
    ax.set_xlim(lengths.min(), lengths.max())
    ax.set_ylim(1 if log else 0, max(top, pretrained_length) * (1.5 if log else 1.15))
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("largest relative position")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_relatives_results(lengths: Sequence[int], bits: Mapping[str, Sequence[float]],
                           passkey: Mapping[str, Sequence[float]], train_length: int,
                           *, title: str | None = None) -> Figure:
    """Two panels against input length: held-out bits per byte, and passkey accuracy (mean over depths)."""
    lengths = np.asarray(list(lengths), dtype=np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.4))
    for ax, data, ylabel in ((axes[0], bits, "held-out bits per byte"),
                             (axes[1], passkey, "passkey accuracy (mean over depths)")):
        for k, (label, values) in enumerate(data.items()):
            values = np.asarray(list(values), dtype=np.float64)
            if values.shape != lengths.shape:
                raise ValueError(f"{label!r} must have one value per length ({len(lengths)}), got {len(values)}")
            ax.plot(lengths, values, color=LINE_COLORS[k % len(LINE_COLORS)], marker="o", markersize=3,
                    linewidth=1.4, linestyle="-" if k < 8 else "--", label=label)
        ax.axvline(train_length, color="black", linestyle=":", linewidth=1.0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [f"{int(n)}" for n in lengths])
        ax.set_xlabel("input length (bytes)")
        ax.set_ylabel(ylabel)
    axes[0].set_ylim(2.0, 5.0)
    axes[1].set_ylim(-0.03, 1.03)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_map_comparison(first: tuple, second: tuple, labels: Sequence[str], *, fontsize: float = 11.0) -> Figure:
    """Two methods' maps side by side and a third panel: second minus first, on the cells both attend.

    ``first`` and ``second`` are (values, regions, attended) [n, n] (``selfextend.methods.position_map``).
    In the difference panel equal cells stay white, a key the second method puts farther away
    (positive) is red, nearer blue, each with its number; future cells are grey. Sized for a projector.
    """
    if len(labels) != 2:
        raise ValueError(f"labels must name the two maps, got {len(labels)} labels")
    a, b = (_as_numpy(first[0], "first values", np.float64), _as_numpy(second[0], "second values", np.float64))
    if a.shape != b.shape:
        raise ValueError(f"the two maps must share one shape, got {a.shape} and {b.shape}")
    seen = _as_numpy(first[2], "first attended").astype(bool) & _as_numpy(second[2], "second attended").astype(bool)
    n_rows, n_cols = a.shape
    cell = 0.42
    fig, axes = plt.subplots(1, 3, figsize=(3 * (cell * n_cols + 0.3), cell * n_rows + 1.2))
    for ax, (values, regions, attended), label in zip(axes[:2], (first, second), labels):
        plot_position_map(values, regions, attended, fontsize=fontsize, ax=ax)
        ax.set_title(label, fontsize=fontsize + 3)
    diff = np.where(seen, b - a, 0.0)
    top = max(1.0, float(np.abs(diff).max()))
    ax = axes[2]
    grid = dict(edgecolors=GRID_COLOR, linewidth=0.5)
    ax.pcolormesh(np.arange(n_cols + 1), np.arange(n_rows + 1), seen.astype(float),
                  cmap=ListedColormap([FUTURE_COLOR, "white"]), vmin=0, vmax=1, **grid)
    ax.pcolormesh(np.arange(n_cols + 1), np.arange(n_rows + 1), np.ma.masked_where(~seen | (diff == 0), diff),
                  cmap="RdBu_r", vmin=-top, vmax=top, **grid)
    for i in range(n_rows):
        for j in range(n_cols):
            if seen[i, j] and diff[i, j] != 0:
                ax.text(j + 0.5, i + 0.5, f"{diff[i, j]:+g}", ha="center", va="center", fontsize=fontsize,
                        color="white" if abs(diff[i, j]) > 0.6 * top else "black")
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("difference (right minus left)", fontsize=fontsize + 3)
    fig.tight_layout()
    return fig
