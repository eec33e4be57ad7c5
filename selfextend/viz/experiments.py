"""Figures of the tiny-model experiments: loss by position, bits per byte by length, the g x w grid,
passkey accuracy against length, grouped attention alone by length (the paper's Fig. 2), and attention
maps of the trained model."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullLocator

from .heatmap import annotated_heatmap


def _colors(n: int) -> list:
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return [cycle[i % len(cycle)] for i in range(n)]


def plot_loss_by_position(
    positions,
    curves: Mapping[str, Sequence[float]],
    train_length: int,
    limits: Mapping[str, int] | None = None,
    title: str = "Loss by token position",
    ylabel: str = "held-out loss (bits per byte)",
    ylim: tuple[float, float] | None = None,
    ax=None,
    xscale: str = "log",
) -> Figure:
    """One line per method (bin centres ``positions`` x mean loss); a dotted line at L_train and a
    dashed line in the curve's colour at each ``limits[label]``, SelfExtend's (L - w) * g + w.
    ``xscale``: "log" (base 2) or "linear"."""
    if xscale not in ("log", "linear"):
        raise ValueError(f"xscale must be 'log' or 'linear', got {xscale!r}")
    limits = dict(limits or {})
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
    else:
        fig = ax.figure
    positions = np.asarray(positions, dtype=float)
    for color, (label, values) in zip(_colors(len(curves)), curves.items()):
        values = np.asarray(values, dtype=float)
        if values.shape != positions.shape:
            raise ValueError(f"curve {label!r} has shape {values.shape}, positions have {positions.shape}")
        ax.plot(positions, values, color=color, lw=1.4, label=label)
        if limits.get(label) is not None and limits[label] <= positions.max() * 1.05:
            ax.axvline(limits[label], color=color, ls="--", lw=1.0, alpha=0.8)
    ax.axvline(train_length, color="0.3", ls=":", lw=1.0)
    ax.text(train_length, 1.0, " L_train", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="0.3")
    if xscale == "log":
        ax.set_xscale("log", base=2)
    ax.set_xlabel(f"token position{' (log scale)' if xscale == 'log' else ''}\n"
                  "dashed: (L - w)·g + w of the curve of that colour")
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


_PANEL_FONT = {"suptitle": 17, "title": 14, "label": 13, "ticks": 12, "legend": 12}


def _position_ticks(ax, high: float, train_length: int) -> None:
    """Ticks at 0, L, 2L, ... up to ``high``, labelled "16k (2L)" (k = 1,024 tokens) or "256 (2L)"."""
    ticks = np.arange(0, high * 1.001 + 1, train_length)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    names = ["0", "L"] + [f"{m}L" for m in range(2, len(ticks))]
    ax.set_xticklabels(["0"] + [(f"{int(t) // 1024}k" if int(t) % 1024 == 0 else f"{int(t):,}") + f" ({name})"
                                for t, name in zip(ticks[1:], names[1:])])


def plot_loss_panels(
    positions,
    curves: Mapping[str, Sequence[float]],
    train_length: int,
    panels: Sequence[tuple[str, Sequence[str]]],
    reference: str,
    limits: Mapping[str, int] | None = None,
    title: str | None = None,
    ylabel: str = "mean loss per block (nats)",
    columns: int = 2,
) -> Figure:
    """Loss by position in panels, one claim each: ``panels`` = [(title, [curve labels]), ...].

    The first panel draws its curves as they are (the ``reference`` curve among them); every later panel
    draws its curves minus ``reference``, position by position, around a zero line in the reference's
    colour, so curves that would lie on top of each other in one plot show their gaps. A curve keeps one
    colour in every panel; NaN (a run that stops earlier) leaves a gap. Dotted: L; dashed, in the
    curve's colour: ``limits[label]`` (Eq. 4's reach) where it lies inside the plot. Sized for a projector.
    """
    positions = np.asarray(positions, dtype=float)
    if positions.ndim != 1 or positions.size == 0:
        raise ValueError(f"positions must be a non-empty 1-D sequence, got shape {positions.shape}")
    values = {label: np.asarray(curve, dtype=float) for label, curve in curves.items()}
    for label, curve in values.items():
        if curve.shape != positions.shape:
            raise ValueError(f"curve {label!r} has shape {curve.shape}, positions have {positions.shape}")
    if reference not in values:
        raise ValueError(f"reference must be one of the curve labels {list(values)}, got {reference!r}")
    if not panels:
        raise ValueError("panels must hold at least one (title, labels) pair")
    unknown = sorted({label for _, labels in panels for label in labels} - set(values))
    if unknown:
        raise ValueError(f"panels name curves that are not in curves: {unknown}")
    limits = dict(limits or {})
    colors = {label: ("black" if label.lower().startswith("plain") else color)
              for label, color in zip(values, _colors(len(values)))}
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, min(columns, len(panels)), figsize=(7.2 * min(columns, len(panels)), 4.4 * rows),
                             sharex=True, squeeze=False, layout="constrained")
    high = positions.max() + (positions[1] - positions[0]) / 2 if positions.size > 1 else positions.max()
    for index, (ax, (panel_title, labels)) in enumerate(zip(axes.flat, panels)):
        if index > 0:
            ax.axhline(0.0, color=colors[reference], lw=2.2, label=f"{reference} (zero)")
        for label in labels:
            shown = values[label] if index == 0 else values[label] - values[reference]
            wide = colors[label] == "black"  # plain: drawn wider and below, so a curve on top of it leaves its edges
            ax.plot(positions, shown, color=colors[label], lw=4.4 if wide else 2.4, zorder=2 if wide else 3,
                    label=label)
            reach = limits.get(label)
            if reach is not None and reach <= high:
                ax.axvline(reach, color=colors[label], ls="--", lw=1.6)
        ax.axvline(train_length, color="0.3", ls=":", lw=1.4)
        ax.set_title(panel_title, fontsize=_PANEL_FONT["title"])
        ax.set_ylabel(ylabel if index == 0 else f"minus {reference} (nats)", fontsize=_PANEL_FONT["label"])
        ax.tick_params(labelsize=_PANEL_FONT["ticks"])
        ax.legend(fontsize=_PANEL_FONT["legend"], loc="best", frameon=True, framealpha=0.92, edgecolor="none")
        _position_ticks(ax, high, train_length)
        ax.set_xlim(0, high)
    for index, ax in enumerate(axes.flat):
        below = index + axes.shape[1]
        if index >= len(panels):
            ax.set_visible(False)
        elif below >= len(panels):  # the lowest panel of its column: its own position axis
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("token position", fontsize=_PANEL_FONT["label"])
    fig.supxlabel("dotted: L; dashed: the reach (L - w)·g + w of the curve of that colour",
                  fontsize=_PANEL_FONT["ticks"], color="0.3")
    if title:
        fig.suptitle(title, fontsize=_PANEL_FONT["suptitle"])
    return fig


def plot_bits_by_length(
    table: Mapping[str, Mapping[int, float]],
    train_length: int,
    title: str = "Held-out bits per byte by input length",
    ax=None,
) -> Figure:
    """Bits per byte against input length (log scale), one line per method: {label: {length: bits}}."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
    else:
        fig = ax.figure
    for color, (label, row) in zip(_colors(len(table)), table.items()):
        lengths = sorted(row)
        ax.plot(lengths, [row[n] for n in lengths], "o-", color=color, lw=1.4, ms=4, label=label)
    ax.axvline(train_length, color="0.3", ls=":", lw=1.0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("input length (bytes, log scale)")
    ax.set_ylabel("bits per byte")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


# Sizes for a slide: saved at 120 dpi with the legend beside it, the figure is about 1400 x 680 pixels,
# so 14-18 pt text still reads when it is shrunk onto a 1280 x 720 projector.
_SLIDE_SIZE = (9.0, 5.6)
_SLIDE_FONT = {"title": 18, "label": 16, "ticks": 14, "legend": 14}


def _baseline_label(curves: Mapping[str, Sequence[float]], baseline: str | None) -> str | None:
    """The curve drawn as the plain model: ``baseline`` if given, else the first label starting with "plain"."""
    if baseline is not None:
        if baseline not in curves:
            raise ValueError(f"baseline must be one of the curve labels {list(curves)}, got {baseline!r}")
        return baseline
    return next((label for label in curves if label.lower().startswith("plain")), None)


def _length_ticks(ax, lengths: np.ndarray, pretrained_length: int) -> None:
    """Ticks at L * 2**k inside the plotted range, labelled as plain integers ("1,024")."""
    low, high = lengths.min(), lengths.max()
    k_low, k_high = int(np.floor(np.log2(low / pretrained_length))), int(np.ceil(np.log2(high / pretrained_length)))
    ticks = [pretrained_length * 2.0**k for k in range(k_low, k_high + 1)
             if low * 0.999 <= pretrained_length * 2.0**k <= high * 1.001]
    if len(ticks) < 2:  # a range narrower than one doubling: tick the lengths themselves
        ticks = lengths.tolist()
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{int(round(t)):,}" for t in ticks])


def plot_grouped_by_length(
    lengths: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    pretrained_length: int,
    *,
    ylabel: str = "perplexity",
    title: str | None = None,
    reach: Mapping[str, int] | None = None,
    baseline: str | None = None,
    xlabel: str = "input length",
    reach_label: str = "reach g·L",
    xscale: str = "log",
    legend_loc: str = "outside",
) -> Figure:
    """The paper's Fig. 2 layout: a score against input length, one line per group size and the plain model.

    ``curves`` maps a legend label to one value per entry of ``lengths`` (perplexity or bits per
    byte at that length, or the loss of the block ending there). The ``baseline`` curve (default:
    the first label starting with "plain") is drawn black; the others take a dark-to-light colour in
    the given order (pass them by increasing g). A dashed black line marks the pretrained length L;
    ``reach[label]`` (e.g. g * L for grouped attention alone) puts a diamond on that curve where it
    lies inside the plotted range. ``xscale``: "log" (base 2, ticks at L * 2**k) or "linear";
    ``legend_loc``: "outside" (right of the axes) or a matplotlib location inside them. Sized to
    read on a 1280 x 720 projector.
    """
    if xscale not in ("log", "linear"):
        raise ValueError(f"xscale must be 'log' or 'linear', got {xscale!r}")
    lengths = np.asarray(lengths, dtype=float)
    if lengths.ndim != 1 or lengths.size == 0 or not np.all(lengths > 0) or np.any(np.diff(lengths) <= 0):
        raise ValueError(f"lengths must be a non-empty, increasing list of positive numbers, got {lengths.tolist()}")
    if not curves:
        raise ValueError("curves must hold at least one curve")
    reach = dict(reach or {})
    unknown = sorted(set(reach) - set(curves))
    if unknown:
        raise ValueError(f"reach names curves that are not in curves: {unknown}")
    plain = _baseline_label(curves, baseline)
    others = [label for label in curves if label != plain]
    palette = dict(zip(others, plt.get_cmap("viridis")(np.linspace(0.05, 0.75, max(len(others), 1)))))
    fig, ax = plt.subplots(figsize=_SLIDE_SIZE)
    marked = False
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.shape != lengths.shape:
            raise ValueError(f"curve {label!r} has shape {values.shape}, lengths have {lengths.shape}")
        color = "black" if label == plain else palette[label]
        ax.plot(lengths, values, "o-", color=color, lw=3.4 if label == plain else 2.6, ms=6, label=label,
                zorder=4 if label == plain else 3)
        at = reach.get(label)
        if at is not None and lengths.min() <= at <= lengths.max():
            y = np.interp(np.log2(at), np.log2(lengths), values) if xscale == "log" else np.interp(at, lengths, values)
            ax.plot([at], [y], marker="D", ms=13, mfc="white", mec=color, mew=2.8, ls="none", zorder=5)
            marked = True
    ax.axvline(pretrained_length, color="black", ls="--", lw=1.6, zorder=1)
    ax.text(pretrained_length, 1.0, f" L = {pretrained_length:,}", transform=ax.get_xaxis_transform(),
            va="top", ha="left", fontsize=_SLIDE_FONT["ticks"])
    if xscale == "log":
        ax.set_xscale("log", base=2)
        _length_ticks(ax, lengths, pretrained_length)
    ax.tick_params(labelsize=_SLIDE_FONT["ticks"])
    ax.set_xlabel(xlabel, fontsize=_SLIDE_FONT["label"])
    ax.set_ylabel(ylabel, fontsize=_SLIDE_FONT["label"])
    if title:
        ax.set_title(title, fontsize=_SLIDE_FONT["title"])
    handles, labels = ax.get_legend_handles_labels()
    if marked:
        handles.append(Line2D([], [], marker="D", ms=11, mfc="white", mec="0.35", mew=2.4, ls="none"))
        labels.append(reach_label)
    place = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if legend_loc == "outside" else {"loc": legend_loc}
    ax.legend(handles, labels, fontsize=_SLIDE_FONT["legend"], **place)
    return fig


def plot_ablation_grid(
    values,
    group_sizes: Sequence[int],
    windows: Sequence[int],
    title: str = "Bits per byte at 8 x L_train",
    value_label: str = "bits per byte",
    fmt: str = "{:.2f}",
    cmap: str = "viridis_r",
    reach_ok=None,
    ax=None,
    fontsize: float = 8,
) -> Figure:
    """Heatmap of ``values`` [len(group_sizes), len(windows)] with every cell annotated (text of ``fontsize``).

    ``reach_ok`` (bool, same shape) marks the cells whose (L - w)·g + w covers the input; the
    others get an "x" after their number.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(group_sizes), len(windows)):
        raise ValueError(
            f"values must have shape (len(group_sizes), len(windows)) = ({len(group_sizes)}, {len(windows)}), "
            f"got {values.shape}"
        )
    finite = values[np.isfinite(values)]
    middle = finite.mean() if finite.size else 0.0  # text colour threshold (cells not run yet are NaN)
    reach = None if reach_ok is None else np.asarray(reach_ok)
    texts = [
        ["·" if np.isnan(values[r, c]) else  # not computed (yet)
         fmt.format(values[r, c]) + ("" if reach is None or reach[r, c] else " x") for c in range(len(windows))]
        for r in range(len(group_sizes))
    ]
    colors = [
        ["white" if (values[r, c] > middle) == cmap.endswith("_r") else "black" for c in range(len(windows))]
        for r in range(len(group_sizes))
    ]
    return annotated_heatmap(
        values,
        [str(w) for w in windows],
        [str(g) for g in group_sizes],
        texts,
        xlabel="neighbor window w",
        ylabel="group size g",
        title=title,
        colorbar_label=value_label,
        cmap=cmap,
        text_colors=colors,
        figsize=(1.6 + 0.9 * len(windows), 1.2 + 0.5 * len(group_sizes)) if fontsize <= 8
        else (2.4 + 1.5 * len(windows), 1.4 + 0.7 * len(group_sizes)),
        fontsize=fontsize,
        ax=ax,
    )


def plot_accuracy_vs_length(
    accuracy: Mapping[str, Sequence[float]],
    lengths: Sequence[int],
    train_length: int,
    title: str = "Passkey accuracy against prompt length",
    ax=None,
) -> Figure:
    """Accuracy (mean over depths) against prompt length, one line per method."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
    else:
        fig = ax.figure
    for color, (label, row) in zip(_colors(len(accuracy)), accuracy.items()):
        row = np.asarray(row, dtype=float)
        if row.shape != (len(lengths),):
            raise ValueError(f"accuracy of {label!r} must have shape ({len(lengths)},), got {row.shape}")
        ax.plot(lengths, row, "o-", color=color, lw=1.4, ms=4, label=label)
    ax.axvline(train_length, color="0.3", ls=":", lw=1.0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(lengths), [str(n) for n in lengths])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("prompt length (bytes)")
    ax.set_ylabel("passkey accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_attention_maps(
    maps: Mapping[str, np.ndarray],
    marks: Sequence[int] = (),
    title: str = "Attention of one head",
    floor: float = 1e-4,
) -> Figure:
    """Side-by-side attention maps [n, n] (query rows, key columns), log colour scale from ``floor``.

    ``marks`` are key positions to outline (e.g. where the passkey sits).
    """
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.0), squeeze=False)
    image = None
    for ax, (label, weights) in zip(axes[0], maps.items()):
        weights = np.asarray(weights, dtype=float)
        if weights.ndim != 2 or weights.shape[0] != weights.shape[1]:
            raise ValueError(f"map {label!r} must be square [n, n], got {weights.shape}")
        image = ax.imshow(np.clip(weights, floor, 1.0), norm=LogNorm(vmin=floor, vmax=1.0), cmap="magma",
                          interpolation="nearest")
        for position in marks:
            ax.axvline(position, color="cyan", lw=0.6, ls="--")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    fig.suptitle(title)
    fig.colorbar(image, ax=list(axes[0]), label="attention probability (log)", fraction=0.025, pad=0.02)
    return fig


def plot_attention_rows(
    rows: Mapping[str, Sequence[float]],
    marks: Sequence[int] = (),
    title: str = "Attention of the last query over the keys",
    ax=None,
) -> Figure:
    """One line per method: the attention probabilities of one query over key positions;
    ``marks`` (e.g. the passkey's bytes) are shaded."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
    else:
        fig = ax.figure
    if len(marks):
        ax.axvspan(min(marks) - 0.5, max(marks) + 0.5, color="0.85", lw=0, label="passkey digits")
    for color, (label, row) in zip(_colors(len(rows)), rows.items()):
        row = np.asarray(row, dtype=float)
        ax.plot(np.arange(row.shape[0]), row, color=color, lw=1.0, label=label)
    ax.set_xlabel("key position")
    ax.set_ylabel("attention probability")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_pooled_attention(
    maps: Mapping[str, np.ndarray],
    rows: Mapping[str, Sequence[float]],
    block: int,
    row_block: int,
    train_length: int,
    title: str = "Attention of one head",
    floor: float = 1e-6,
) -> Figure:
    """Pooled attention maps side by side (top) and the last query's attention by key position (bottom).

    ``maps[label]`` [m, m]: cell (I, J) = mean over the queries of row block I of the attention mass on
    key block J (``block`` tokens a side). ``rows[label]`` [n / row_block]: the last query's mass per
    ``row_block`` keys. Dotted: distance ``train_length`` from the query (the map's diagonal band edge;
    on the row, the keys left of it are farther than any distance seen in pretraining).
    """
    with plt.rc_context({"font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "legend.fontsize": 13}):
        fig = plt.figure(figsize=(4.2 * len(maps) + 0.8, 7.4))
        grid = fig.add_gridspec(2, len(maps), height_ratios=(1.25, 1.0), hspace=0.38)
        image = None
        for column, (label, pooled) in enumerate(maps.items()):
            pooled = np.asarray(pooled, dtype=float)
            if pooled.ndim != 2 or pooled.shape[0] != pooled.shape[1]:
                raise ValueError(f"map {label!r} must be square [m, m], got {pooled.shape}")
            n = pooled.shape[0] * block
            ax = fig.add_subplot(grid[0, column])
            image = ax.imshow(np.clip(pooled, floor, 1.0), norm=LogNorm(vmin=floor, vmax=1.0), cmap="magma",
                              interpolation="nearest", extent=(0, n, n, 0))
            ax.plot([0, n - train_length], [train_length, n], color="cyan", ls=":", lw=1.0)
            ax.set_title(label)
            ax.set_xlabel("key position")
            ax.set_ylabel("query position")
        fig.colorbar(image, ax=fig.axes, label=f"attention mass per {block}-key block (log)", fraction=0.025,
                     pad=0.02)
        ax = fig.add_subplot(grid[1, :])
        n_row = None
        for color, (label, row) in zip(_colors(len(rows)), rows.items()):
            row = np.asarray(row, dtype=float)
            n_row = row.shape[0] * row_block
            centres = (np.arange(row.shape[0]) + 0.5) * row_block
            ax.plot(centres, np.clip(row, floor, 1.0), color=color, lw=1.0, label=label)
        if n_row is not None and n_row > train_length:
            ax.axvspan(0, n_row - 1 - train_length, color="0.9", lw=0,
                       label=f"keys farther than {train_length} from the query")
        ax.set_yscale("log")
        ax.set_xlabel("key position")
        ax.set_ylabel(f"attention mass per {row_block} keys")
        ax.set_title(f"The last query (position {n_row - 1 if n_row else '?'}) over the keys", fontsize=14)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the curves: the figure is height-bound
        fig.suptitle(title)
    return fig


def plot_perplexity_table(
    values,
    methods: Sequence[str],
    lengths: Sequence[int],
    title: str = "Perplexity of the first N tokens",
    pretrained_length: int | None = None,
) -> Figure:
    """The paper's Table 1 as a picture: perplexity [len(methods), len(lengths)] in every cell, coloured by its log.

    A dashed line marks ``pretrained_length`` after the last column inside it. Sized for a projector.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (len(methods), len(lengths)):
        raise ValueError(f"values must have shape ({len(methods)}, {len(lengths)}), got {values.shape}")
    if not np.all(values[~np.isnan(values)] > 0):
        raise ValueError("values must be positive perplexities")
    logs = np.log10(values)
    texts = [[("" if np.isnan(v) else f"{v:,.1f}" if v < 1000 else f"{v:,.0f}") for v in row] for row in values]
    fig = annotated_heatmap(
        logs, [f"{n / 1024:g}k" for n in lengths], list(methods), texts,
        xlabel="N (tokens)", ylabel="", title=title, colorbar_label="log10 perplexity", cmap="YlOrRd",
        vmin=float(np.nanmin(logs)), vmax=float(max(np.nanmax(logs), np.nanmin(logs) + 1.0)), fontsize=13,
        figsize=(3.4 + 1.15 * len(lengths), 1.2 + 0.55 * len(methods)),
    )
    ax = fig.axes[0]
    ax.tick_params(labelsize=13)
    ax.xaxis.label.set_size(14)
    ax.title.set_size(16)
    if pretrained_length is not None:
        inside = sum(n <= pretrained_length for n in lengths)
        if 0 < inside < len(lengths):
            ax.axvline(inside - 0.5, color="black", ls="--", lw=2.0)
    return fig
