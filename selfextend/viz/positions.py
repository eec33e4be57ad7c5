"""Pictures of relative-position matrices: the paper's Figure 3, masks, and which positions are used.

Colours follow Figure 3 of Jin et al. (2024): neighbor cells orange, grouped cells blue, distances
the model never saw in pretraining (>= L) grey, future (masked) cells light lavender.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch, Patch
from matplotlib.ticker import MaxNLocator

from .._checks import check_positive_int
from ..positions import (
    causal_mask,
    grouped_attention_mask,
    grouped_relative_positions,
    merged_relative_positions,
    normal_relative_positions,
)

# Colours sampled from the paper's Figure 3.
NEIGHBOR_COLOR = "#D47D3A"  # orange: ordinary RoPE position, inside the neighbor window
GROUPED_COLOR = "#97A9D9"  # blue: grouped (floor-divided) position
UNSEEN_COLOR = "#74706F"  # grey: a distance >= the pretrained length L
FUTURE_COLOR = "#EAEAF4"  # light lavender: j > i, masked by the causal mask
GRID_COLOR = "black"

# Cell categories, in the order of the colour map below.
FUTURE, NEIGHBOR, GROUPED, UNSEEN = 0, 1, 2, 3
_CELL_COLORS = ListedColormap([FUTURE_COLOR, NEIGHBOR_COLOR, GROUPED_COLOR, UNSEEN_COLOR])
_CELL_NORM = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], _CELL_COLORS.N)


def _as_numpy(matrix, name: str, dtype=None) -> np.ndarray:
    """A 2-D numpy copy of a tensor / array / nested list, or a ValueError naming ``name``."""
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix) if dtype is None else np.asarray(matrix, dtype=dtype)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty 2-D matrix [queries, keys], got shape {array.shape}")
    return array


def _bool_matrix(value, shape: tuple[int, int], name: str) -> np.ndarray:
    """A bool matrix of ``shape`` from a bool scalar or a matrix of that shape."""
    if isinstance(value, (bool, np.bool_)):
        return np.full(shape, bool(value))
    array = _as_numpy(value, name)
    if array.dtype != bool:
        raise ValueError(f"{name} must be a bool matrix (or True/False), got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have the shape of the matrix {shape}, got {array.shape}")
    return array


def _new_axes(ax: Axes | None, shape: tuple[int, int], cell_inches: float = 0.32) -> tuple[Figure, Axes]:
    """The given axes and its figure, or a new figure sized so that cells are about square."""
    if ax is not None:
        return ax.figure, ax
    rows, cols = shape
    fig, ax = plt.subplots(figsize=(0.8 + cell_inches * cols, 0.8 + cell_inches * rows))
    return fig, ax


def _grid_axes(ax: Axes, shape: tuple[int, int], tick_labels: bool, query_offset: int = 0) -> None:
    """Rows top to bottom, square cells, query / key tick labels or none (as in Figure 3)."""
    rows, cols = shape
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if tick_labels:
        ax.set_xticks(np.arange(cols) + 0.5, [str(j) for j in range(cols)])
        ax.set_yticks(np.arange(rows) + 0.5, [str(query_offset + i) for i in range(rows)])
        ax.set_xlabel("key position j")
        ax.set_ylabel("query position i")
        ax.tick_params(length=0)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def cell_categories(
    matrix, grouped=False, *, pretrained_length: int | None = None, causal=None
) -> np.ndarray:
    """Int [rows, cols]: FUTURE (0), NEIGHBOR (1), GROUPED (2) or UNSEEN (3) for every cell.

    ``grouped``: bool matrix (or one bool for all cells), True where the grouped position is used.
    ``pretrained_length`` L: causal cells with a value >= L are UNSEEN, grouped or not (a relative
    position the model never saw in pretraining).
    ``causal``: bool matrix, True where the key may be attended; default j <= i with the queries
    being the last rows (``selfextend.positions.causal_mask``).
    """
    values = _as_numpy(matrix, "matrix")
    shape = values.shape
    grouped = _bool_matrix(grouped, shape, "grouped")
    causal = _bool_matrix(causal_mask(*shape).numpy() if causal is None else causal, shape, "causal")
    categories = np.where(grouped, GROUPED, NEIGHBOR)
    if pretrained_length is not None:
        pretrained_length = check_positive_int("pretrained_length", pretrained_length)
        categories = np.where(values >= pretrained_length, UNSEEN, categories)
    return np.where(causal, categories, FUTURE)


def plot_relative_positions(
    matrix,
    grouped=False,
    *,
    pretrained_length: int | None = None,
    causal=None,
    title: str | None = None,
    annotate: bool = True,
    tick_labels: bool = False,
    fontsize: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """An annotated grid like one panel of the paper's Figure 3 (rows: queries i, columns: keys j).

    Every causal cell shows its number; neighbor cells are orange, cells marked in ``grouped`` blue,
    cells with a value >= ``pretrained_length`` grey, future cells light and blank.
    See ``cell_categories`` for ``grouped`` and ``causal``.
    """
    values = _as_numpy(matrix, "matrix")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"matrix must hold integer relative positions, got dtype {values.dtype}")
    categories = cell_categories(values, grouped, pretrained_length=pretrained_length, causal=causal)
    fig, ax = _new_axes(ax, values.shape)
    rows, cols = values.shape
    ax.pcolormesh(
        np.arange(cols + 1), np.arange(rows + 1), categories,
        cmap=_CELL_COLORS, norm=_CELL_NORM, edgecolors=GRID_COLOR, linewidth=0.8,
    )
    _grid_axes(ax, values.shape, tick_labels, query_offset=causal_offset(values.shape))
    if annotate:
        size = fontsize if fontsize is not None else (9 if max(rows, cols) <= 12 else 7)
        for i in range(rows):
            for j in range(cols):
                if categories[i, j] != FUTURE:
                    ax.text(j + 0.5, i + 0.5, str(values[i, j]), ha="center", va="center", fontsize=size)
    if title is not None:
        ax.set_title(title)
    return fig


def causal_offset(shape: tuple[int, int]) -> int:
    """Position of the first query row: the queries are the last ``rows`` of ``cols`` positions."""
    rows, cols = shape
    return max(cols - rows, 0)


def _arrow(
    fig: Figure, start_ax: Axes, start, end_ax: Axes, end, text: str | None = None, lift: float = 0.03, **style
) -> None:
    """A black arrow between two axes (axes-fraction coordinates), with bold text above its middle."""
    arrow = ConnectionPatch(
        start, end, coordsA=start_ax.transAxes, coordsB=end_ax.transAxes,
        arrowstyle="-|>", mutation_scale=14, linewidth=1.6, color="black", **style,
    )
    fig.add_artist(arrow)
    if text is not None:
        x = (start_ax.get_position().x1 + end_ax.get_position().x0) / 2 if start_ax is not end_ax else None
        if x is None:  # an arrow leaving the last panel: put the text above the arrow's start
            box = start_ax.get_position()
            x = box.x1 + (end[0] - 1) * box.width / 2
        y = start_ax.get_position().y0 + start[1] * start_ax.get_position().height
        fig.text(x, y + lift, text, ha="center", va="bottom", fontsize=12, fontweight="bold")


def plot_selfextend_positions(
    seq_len: int = 10,
    group_size: int = 2,
    window: int = 4,
    pretrained_length: int | None = 7,
    *,
    arrows: bool = True,
    tick_labels: bool = False,
) -> Figure:
    """The paper's Figure 3: "Normal Attention", "Grouped Attention" (// g), "SelfExtend" (+ (w - w//g)).

    Left: i - j, grey where i - j >= L. Middle: i//g - j//g, all blue. Right: i - j where
    i - j < w (orange), else i//g + (w - w//g) - j//g (blue). Defaults are the paper's:
    10 tokens, L = 7, w = 4, g = 2.
    """
    seq_len = check_positive_int("seq_len", seq_len)
    group_size = check_positive_int("group_size", group_size)
    window = check_positive_int("window", window)
    normal = normal_relative_positions(seq_len)
    grouped = grouped_relative_positions(seq_len, group_size=group_size)
    merged = merged_relative_positions(seq_len, seq_len, group_size, window)
    replaced = grouped_attention_mask(seq_len, seq_len, window)

    cell = 0.3 if seq_len <= 16 else max(0.12, 4.8 / seq_len)
    panel = cell * seq_len
    gap = 1.1 if arrows else 0.35
    width, height = 3 * panel + 2 * gap + (1.0 if arrows else 0.2), panel + (0.9 if arrows else 0.5)
    fig = plt.figure(figsize=(width, height))
    bottom = (0.55 if arrows else 0.2) / height
    axes = [fig.add_axes([(0.1 + k * (panel + gap)) / width, bottom, panel / width, panel / height])
            for k in range(3)]
    size = 12 if seq_len <= 12 else (6 if seq_len <= 20 else 4)  # 12 pt: 16 px on a 1280 x 720 slide
    annotate = seq_len <= 32
    with plt.rc_context({"axes.titlesize": 12.5, "font.size": 12}):  # 16 px or more on a 1280 x 720 slide
        plot_relative_positions(normal, False, pretrained_length=pretrained_length, title="Normal Attention",
                                ax=axes[0], annotate=annotate, fontsize=size, tick_labels=tick_labels)
        plot_relative_positions(grouped, True, title="Grouped Attention",
                                ax=axes[1], annotate=annotate, fontsize=size, tick_labels=tick_labels)
        plot_relative_positions(merged, replaced, title="SelfExtend",
                                ax=axes[2], annotate=annotate, fontsize=size, tick_labels=tick_labels)
        if arrows:
            _arrow(fig, axes[0], (1.04, 0.5), axes[1], (-0.04, 0.5), f"// {group_size}")
            shift = f"+ ({window} - {window}//{group_size})"
            _arrow(fig, axes[1], (1.04, 0.5), axes[2], (-0.04, 0.5), shift, lift=0.065,
                   connectionstyle="arc3,rad=-0.3")
            _arrow(fig, axes[2], (1.04, 0.5), axes[2], (1.04 + 0.7 * gap / panel, 0.5), "SoftMax")
            # The neighbor part of the normal matrix is copied into SelfExtend unchanged.
            _arrow(fig, axes[0], (0.7, -0.02), axes[2], (0.8, -0.02), connectionstyle="arc3,rad=0.12")
    return fig


def position_caption(seq_len: int, group_size: int, window: int, pretrained_length: int) -> str:
    """One line for the sliders: the largest relative position of SelfExtend and of normal attention
    against L, and Eq. 4's reach (L - w)·g + w."""
    from ..positions import largest_relative_position, max_context_length

    reach = max_context_length(pretrained_length, group_size, window)  # checks w < L
    seq_len = check_positive_int("seq_len", seq_len)
    largest = largest_relative_position(seq_len, group_size, window)

    def against(value: int) -> str:
        return f"{value} < L" if value < pretrained_length else f"{value} ≥ L"

    return (f"largest relative position: SelfExtend {against(largest)} = {pretrained_length}, normal attention "
            f"{against(seq_len - 1)}; SelfExtend stays below L up to N = (L - w)·g + w = {reach}")


def plot_position_explorer(
    seq_len: int,
    group_size: int,
    window: int,
    pretrained_length: int,
    *,
    panel_inches: float = 3.6,
    min_fontsize: float = 6.5,
) -> Figure:
    """Normal attention beside SelfExtend for any N, g, w and L (the sliders of notebook 02).

    As in Figure 3, grey cells are relative positions >= L that pretraining never saw, now in both
    panels: SelfExtend has none while N <= (L - w)·g + w (Eq. 4). The panels keep their size in
    inches whatever N is; the numbers are written while they fit (at least ``min_fontsize`` points),
    past that only the colours are drawn. The title is ``position_caption``.
    """
    caption = position_caption(seq_len, group_size, window, pretrained_length)  # checks every argument
    normal = normal_relative_positions(seq_len)
    merged = merged_relative_positions(seq_len, seq_len, group_size, window)
    replaced = grouped_attention_mask(seq_len, seq_len, window)

    fontsize = min(9.0, 0.42 * 72 * panel_inches / seq_len)  # about 40% of a cell's height
    annotate = fontsize >= min_fontsize
    gap, left, bottom, top = 0.5, 0.15, 0.55, 0.75
    width, height = 2 * panel_inches + gap + 2 * left, panel_inches + bottom + top
    fig = plt.figure(figsize=(width, height))
    axes = [fig.add_axes([(left + k * (panel_inches + gap)) / width, bottom / height,
                          panel_inches / width, panel_inches / height]) for k in range(2)]
    plot_relative_positions(normal, False, pretrained_length=pretrained_length, ax=axes[0], annotate=annotate,
                            fontsize=fontsize, title=f"Normal attention, N = {seq_len}")
    plot_relative_positions(merged, replaced, pretrained_length=pretrained_length, ax=axes[1], annotate=annotate,
                            fontsize=fontsize, title=f"SelfExtend, g = {group_size}, w = {window}")
    if seq_len > 16:  # thinner grid lines, or the black lines hide the colours
        for ax in axes:
            for mesh in ax.collections:
                mesh.set_linewidth(0.8 * 16 / seq_len)
    fig.suptitle(caption.replace("; ", "\n"), fontsize=10, y=1 - 0.08 / height, va="top")
    handles = [Patch(facecolor=NEIGHBOR_COLOR, edgecolor=GRID_COLOR, label="neighbor: i - j < w"),
               Patch(facecolor=GROUPED_COLOR, edgecolor=GRID_COLOR, label="grouped"),
               Patch(facecolor=UNSEEN_COLOR, edgecolor=GRID_COLOR,
                     label=f"never seen in pretraining (≥ L = {pretrained_length})")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.02 / height))
    return fig


def plot_mask(
    mask,
    *,
    causal=None,
    true_label: str = "True",
    false_label: str = "False",
    true_color: str = GROUPED_COLOR,
    false_color: str = NEIGHBOR_COLOR,
    annotate: bool = True,
    tick_labels: bool = True,
    legend: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A bool matrix as a grid of two colours, with 1 / 0 written in the cells.

    ``causal`` (bool matrix, or True for "show every cell") greys out the future cells; by default
    j <= i with the queries being the last rows. Works for one row too (a single decoding step).
    """
    values = _as_numpy(mask, "mask")
    if values.dtype != bool:
        raise ValueError(f"mask must be a bool matrix, got dtype {values.dtype}")
    shape = values.shape
    causal = _bool_matrix(causal_mask(*shape).numpy() if causal is None else causal, shape, "causal")
    colors = ListedColormap([FUTURE_COLOR, false_color, true_color])
    categories = np.where(causal, np.where(values, 2, 1), 0)
    fig, ax = _new_axes(ax, shape)
    rows, cols = shape
    ax.pcolormesh(np.arange(cols + 1), np.arange(rows + 1), categories, cmap=colors,
                  norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3), edgecolors=GRID_COLOR, linewidth=0.8)
    _grid_axes(ax, shape, tick_labels, query_offset=causal_offset(shape))
    if annotate:
        size = 9 if max(shape) <= 12 else 7
        for i in range(rows):
            for j in range(cols):
                if causal[i, j]:
                    ax.text(j + 0.5, i + 0.5, str(int(values[i, j])), ha="center", va="center", fontsize=size)
    if legend:
        handles = [Patch(facecolor=true_color, edgecolor=GRID_COLOR, label=true_label),
                   Patch(facecolor=false_color, edgecolor=GRID_COLOR, label=false_label)]
        if not causal.all():
            handles.append(Patch(facecolor=FUTURE_COLOR, edgecolor=GRID_COLOR, label="future (masked)"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title is not None:
        ax.set_title(title)
    return fig


def position_counts(matrix, causal=None) -> np.ndarray:
    """Int [max + 1]: how many causal (query, key) pairs use each relative position 0 .. max."""
    values = _as_numpy(matrix, "matrix")
    causal = _bool_matrix(causal_mask(*values.shape).numpy() if causal is None else causal,
                          values.shape, "causal")
    used = values[causal]
    if (used < 0).any():
        raise ValueError("matrix must hold relative positions >= 0 in every causal cell")
    return np.bincount(used.astype(np.int64))


def plot_position_usage(
    matrices: Mapping[str, object],
    pretrained_length: int,
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """How often each relative position is used, per matrix, against the pretrained length L.

    Positions >= L (shaded) never occurred in pretraining: "out of distribution" for the model.
    ``matrices`` maps a label to a [queries, keys] matrix of relative positions (causal cells used).
    """
    pretrained_length = check_positive_int("pretrained_length", pretrained_length)
    if not matrices:
        raise ValueError("matrices must map at least one label to a relative-position matrix")
    counts = {label: position_counts(matrix) for label, matrix in matrices.items()}
    largest = max(len(c) for c in counts.values()) - 1
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
    else:
        fig = ax.figure
    right = max(largest, pretrained_length) + 1
    ax.axvspan(pretrained_length - 0.5, right - 0.5, color=UNSEEN_COLOR, alpha=0.18, linewidth=0,
               label=f"never seen in pretraining (>= L = {pretrained_length})")
    ax.axvline(pretrained_length - 0.5, color=UNSEEN_COLOR, linewidth=1.2)
    colors = [NEIGHBOR_COLOR, GROUPED_COLOR, "#2ca02c", "#9467bd", "#8c564b"]
    bars = len(counts)
    width = 0.8 / bars
    for k, (label, count) in enumerate(counts.items()):
        color = colors[k % len(colors)] if bars > 1 else GROUPED_COLOR
        positions = np.arange(len(count))
        if largest <= 64:
            ax.bar(positions + (k - (bars - 1) / 2) * width, count, width=width, color=color,
                   edgecolor="black", linewidth=0.4,
                   label=f"{label} (largest {len(count) - 1})")
        else:
            ax.stairs(count, np.arange(len(count) + 1) - 0.5, color=color, linewidth=1.5,
                      label=f"{label} (largest {len(count) - 1})")
    ax.set_xlim(-0.5, right - 0.5)
    ax.set_ylim(0, 1.45 * max(c.max() for c in counts.values()))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("relative position the attention uses")
    ax.set_ylabel("number of (query, key) pairs")
    ax.legend(loc="upper right", fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig


def plot_largest_position(
    seq_lens,
    pretrained_length: int,
    group_size: int,
    window: int,
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Largest relative position against sequence length N: N - 1 (normal) and
    (N - 1)//g + w - w//g (SelfExtend), with the pretrained length L and Eq. 4's (L - w)·g + w."""
    from ..positions import largest_relative_position, max_context_length

    pretrained_length = check_positive_int("pretrained_length", pretrained_length)
    lengths = np.asarray(list(seq_lens), dtype=np.int64)
    if lengths.ndim != 1 or len(lengths) == 0 or (lengths < 1).any():
        raise ValueError("seq_lens must be a non-empty sequence of positive integers")
    normal = lengths - 1
    extended = np.array([largest_relative_position(int(n), group_size, window) for n in lengths])
    reach = max_context_length(pretrained_length, group_size, window)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    else:
        fig = ax.figure
    ax.axhspan(pretrained_length - 0.5, max(normal.max(), extended.max(), pretrained_length) + 1,
               color=UNSEEN_COLOR, alpha=0.18, linewidth=0, label="never seen in pretraining (>= L)")
    ax.axhline(pretrained_length - 1, color=UNSEEN_COLOR, linewidth=1.0, linestyle="--",
               label=f"L - 1 = {pretrained_length - 1}, largest pretrained position")
    ax.plot(lengths, normal, color=NEIGHBOR_COLOR, linewidth=2, marker=".", label="normal attention: N - 1")
    ax.plot(lengths, extended, color=GROUPED_COLOR, linewidth=2, marker=".",
            label=f"SelfExtend: (N-1)//{group_size} + {window} - {window}//{group_size}")
    ax.axvline(reach, color="black", linewidth=1.0, linestyle=":",
               label=f"(L - w)·g + w = {reach}")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("largest relative position")
    ax.set_ylim(0, max(normal.max(), extended.max(), pretrained_length) + 1)
    ax.set_xlim(lengths.min(), lengths.max())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig


def plot_rope_scores(
    distances,
    scores: Mapping[str, object],
    *,
    pretrained_length: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """RoPE score q·k against the distance i - j, one line per entry of ``scores``.

    Distances >= ``pretrained_length`` L are shaded: a model pretrained on L tokens never saw them.
    """
    distances = _as_vector(distances, "distances")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.8, 3.4))
    else:
        fig = ax.figure
    if not scores:
        raise ValueError("scores must map at least one label to a score curve")
    colors = [GROUPED_COLOR, NEIGHBOR_COLOR, "#2ca02c", "#9467bd"]
    for k, (label, values) in enumerate(scores.items()):
        values = _as_vector(values, f"scores[{label!r}]")
        if values.shape != distances.shape:
            raise ValueError(
                f"scores[{label!r}] must have one value per distance ({len(distances)}), got {len(values)}"
            )
        ax.plot(distances, values, color=colors[k % len(colors)], linewidth=1.0, label=label)
    if pretrained_length is not None:
        pretrained_length = check_positive_int("pretrained_length", pretrained_length)
        ax.axvspan(pretrained_length, distances.max(), color=UNSEEN_COLOR, alpha=0.18, linewidth=0,
                   label=f"never seen in pretraining (i - j >= L = {pretrained_length})")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlim(distances.min(), distances.max())
    ax.set_xlabel("relative position i - j")
    ax.set_ylabel("score  q·k / √d")
    ax.legend(loc="upper right", fontsize=8, frameon=True, facecolor="white", framealpha=0.9, edgecolor="none")
    if title is not None:
        ax.set_title(title)
    return fig


def plot_rotation_coverage(
    head_dim: int,
    pretrained_length: int,
    seq_len: int,
    base: float = 10000.0,
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """For every RoPE pair k, the part of a full turn its angle (i - j)·θ_k sweeps.

    Distances 0 .. L-1 (pretraining) against 0 .. N-1 (the long input). Pairs whose bar for N is
    taller than for L meet angles at inference that they never met in training.
    """
    from ..rope import inverse_frequencies

    pretrained_length = check_positive_int("pretrained_length", pretrained_length)
    seq_len = check_positive_int("seq_len", seq_len)
    theta = inverse_frequencies(head_dim, base).numpy()
    turn = 2 * np.pi
    seen = np.minimum((pretrained_length - 1) * theta / turn, 1.0)
    needed = np.minimum((seq_len - 1) * theta / turn, 1.0)
    pairs = np.arange(len(theta))
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.8, 3.2))
    else:
        fig = ax.figure
    ax.bar(pairs, needed, width=0.8, color=UNSEEN_COLOR, alpha=0.45,
           label=f"swept by distances < N = {seq_len}")
    ax.bar(pairs, seen, width=0.8, color=GROUPED_COLOR, edgecolor="black", linewidth=0.3,
           label=f"swept in pretraining, distances < L = {pretrained_length}")
    ax.set_yscale("log")
    ax.set_ylim(min(seen.min(), 1.0) / 2, 2.0)
    ax.set_xlabel("RoPE pair k  (θ_k = base^(-2k/d), slower to the right)")
    ax.set_ylabel("part of a full turn")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    if title is not None:
        ax.set_title(title)
    return fig


def _as_vector(values, name: str) -> np.ndarray:
    """A 1-D float numpy copy of a tensor / array / list."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to(torch.float64).cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    return array
