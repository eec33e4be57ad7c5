"""Heatmaps of attention logits and softmax weights (rows: queries, columns: keys)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from .positions import FUTURE_COLOR, causal_offset

MAX_TOKEN_LABELS = 32  # up to this many tokens every one is labelled, beyond that every k-th one
MAX_NUMBER_LABELS = 12  # positions without tokens: at most about this many labels per axis
_NICE_STEPS = (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 256, 500, 512, 1000, 1024)


def _as_matrix(values, name: str) -> np.ndarray:
    """A float64 [queries, keys] numpy copy; a leading batch/head dimension of size 1 is dropped."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to(torch.float64).cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"{name} must be a non-empty 2-D matrix [queries, keys] (one head; leading size-1 dims "
            f"are dropped), got shape {tuple(np.shape(values))}"
        )
    return array


def _visible(shape: tuple[int, int], mask) -> np.ndarray:
    """Bool [queries, keys]: True where a cell is drawn (``mask``; default: everything)."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(f"mask must be a bool matrix of shape {shape}, got {mask.dtype} {mask.shape}")
    return mask


def _norm(values: np.ndarray, log_scale: bool, vmin: float | None, vmax: float | None) -> Normalize:
    """Linear or logarithmic colour scale over the finite (and, for log, positive) values."""
    finite = values[np.isfinite(values)]
    if log_scale:
        positive = finite[finite > 0]
        if vmin is None:
            vmin = max(float(positive.min()), 1e-12) if positive.size else 1e-6
        if vmax is None:
            vmax = float(positive.max()) if positive.size else 1.0
        if not 0 < vmin < vmax:
            raise ValueError(f"log_scale needs 0 < vmin < vmax, got vmin={vmin}, vmax={vmax}")
        return LogNorm(vmin=vmin, vmax=vmax, clip=True)
    if vmin is None:
        vmin = float(finite.min()) if finite.size else 0.0
    if vmax is None:
        vmax = float(finite.max()) if finite.size else 1.0
    if vmax <= vmin:
        vmax = vmin + 1.0
    return Normalize(vmin=vmin, vmax=vmax)


def _tick_labels(ax: Axes, shape: tuple[int, int], tokens, query_tokens) -> None:
    """Key tokens under the columns, query tokens beside the rows (every k-th one if many)."""
    rows, cols = shape
    offset = causal_offset(shape)
    if tokens is not None and len(tokens) != cols:
        raise ValueError(f"tokens must have one label per key ({cols}), got {len(tokens)}")
    if query_tokens is None:
        query_tokens = None if tokens is None else list(tokens)[offset:]
    if query_tokens is not None and len(query_tokens) != rows:
        raise ValueError(f"query_tokens must have one label per query ({rows}), got {len(query_tokens)}")
    keys = [str(t) for t in tokens] if tokens is not None else [str(j) for j in range(cols)]
    queries = [str(t) for t in query_tokens] if query_tokens is not None else [str(offset + i) for i in range(rows)]
    col_step = _tick_step(cols, tokens is not None)
    row_step = _tick_step(rows, query_tokens is not None)
    size = 7 if max(cols, rows) > 12 else None
    ax.set_xticks(range(0, cols, col_step), keys[::col_step], rotation=90 if tokens is not None else 0,
                  fontsize=size)
    ax.set_yticks(range(0, rows, row_step), queries[::row_step], fontsize=size)
    ax.tick_params(length=2)


def _tick_step(count: int, tokens: bool) -> int:
    """Label every token up to MAX_TOKEN_LABELS; otherwise the smallest round step that fits."""
    if tokens and count <= MAX_TOKEN_LABELS:
        return 1
    limit = MAX_TOKEN_LABELS if tokens else MAX_NUMBER_LABELS
    for step in _NICE_STEPS:
        if -(-count // step) <= limit:
            return step
    return -(-count // limit)


def _draw_boundary(ax: Axes, shape: tuple[int, int], window: int) -> None:
    """A staircase line between the neighbor cells (i - j < w) and the grouped cells (i - j >= w)."""
    rows, cols = shape
    offset = causal_offset(shape)
    xs, ys = [], []
    for row in range(rows):
        edge = offset + row - window + 1  # first key column inside the window for this query
        x = min(max(edge, 0), cols) - 0.5
        xs += [x, x]
        ys += [row - 0.5, row + 0.5]
    ax.plot(xs, ys, color="white", linewidth=1.6)
    ax.plot(xs, ys, color="black", linewidth=0.8, linestyle="--")


def plot_attention(
    values,
    *,
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
    mask=None,
    log_scale: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    colorbar: bool = True,
    colorbar_label: str = "attention weight",
    window: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of one head's attention logits or weights [queries, keys], with a colour bar.

    ``mask`` (bool, True = drawn) and non-finite values are shown blank (light); ``log_scale``
    uses a logarithmic colour scale (zeros blank); ``tokens`` label the keys, ``query_tokens`` the
    queries (default: the last tokens); ``window`` draws the boundary i - j = w of SelfExtend.
    """
    matrix = _as_matrix(values, "values")
    visible = _visible(matrix.shape, mask) & np.isfinite(matrix)
    if log_scale:
        visible &= matrix > 0
    norm = _norm(np.where(visible, matrix, np.nan), log_scale, vmin, vmax)
    colours = plt.get_cmap(cmap).with_extremes(bad=FUTURE_COLOR)
    if ax is None:
        rows, cols = matrix.shape
        side = min(6.0, max(2.6, 0.28 * max(rows, cols)))
        fig, ax = plt.subplots(figsize=(side * cols / max(rows, cols) + 1.6, side * rows / max(rows, cols) + 0.9))
    else:
        fig = ax.figure
    image = ax.imshow(np.ma.masked_array(matrix, ~visible), cmap=colours, norm=norm,
                      interpolation="nearest", aspect="equal")
    _tick_labels(ax, matrix.shape, tokens, query_tokens)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    if window is not None:
        _draw_boundary(ax, matrix.shape, window)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, label=colorbar_label, fraction=0.046, pad=0.04)
    return fig


def plot_attention_panels(
    panels: Mapping[str, object],
    *,
    tokens: Sequence[str] | None = None,
    query_tokens: Sequence[str] | None = None,
    mask=None,
    log_scale: bool = False,
    shared_scale: bool = True,
    cmap: str = "viridis",
    colorbar_label: str = "attention weight",
    boundaries: Mapping[str, int] | None = None,
    suptitle: str | None = None,
    panel_inches: float = 3.2,
) -> Figure:
    """Several heatmaps side by side (e.g. normal, grouped, SelfExtend), one title each.

    With ``shared_scale`` every panel uses one colour scale and one colour bar, so colours compare
    across panels; otherwise each panel gets its own colour bar. ``boundaries`` maps a panel title
    to a window w: that panel gets the line i - j = w drawn (see ``plot_attention``).
    """
    if not panels:
        raise ValueError("panels must map at least one title to a matrix")
    boundaries = dict(boundaries or {})
    unknown = sorted(set(boundaries) - set(panels))
    if unknown:
        raise ValueError(f"boundaries names panels that do not exist: {unknown}; panels are {list(panels)}")
    matrices = {title: _as_matrix(values, f"panels[{title!r}]") for title, values in panels.items()}
    shapes = {m.shape for m in matrices.values()}
    if len(shapes) != 1:
        raise ValueError(f"all panels must have one shape, got {sorted(shapes)}")
    shape = shapes.pop()
    visible = _visible(shape, mask)
    vmin = vmax = None
    if shared_scale:
        shown = np.concatenate([np.where(visible & np.isfinite(m), m, np.nan).ravel() for m in matrices.values()])
        if log_scale:
            shown = np.where(shown > 0, shown, np.nan)
        norm = _norm(shown, log_scale, None, None)
        vmin, vmax = norm.vmin, norm.vmax
    count = len(matrices)
    height = panel_inches * shape[0] / max(shape) + 1.2
    fig, axes = plt.subplots(1, count, figsize=(panel_inches * count + 1.4, height), squeeze=False)
    axes = axes[0]
    for ax, (title, matrix) in zip(axes, matrices.items()):
        plot_attention(matrix, tokens=tokens, query_tokens=query_tokens, mask=mask, log_scale=log_scale,
                       vmin=vmin, vmax=vmax, cmap=cmap, colorbar=not shared_scale,
                       colorbar_label=colorbar_label, window=boundaries.get(title), title=title, ax=ax)
    for ax in axes[1:]:
        ax.set_ylabel("")
    if shared_scale:
        fig.colorbar(axes[0].images[0], ax=list(axes), label=colorbar_label, fraction=0.02, pad=0.02)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig
