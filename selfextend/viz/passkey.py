"""Needle-in-a-haystack picture: passkey accuracy over prompt length x passkey depth."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .heatmap import annotated_heatmap


def plot_passkey_heatmap(
    accuracy,
    lengths: Sequence[int],
    depths: Sequence[float],
    title: str = "Passkey retrieval",
    length_label: str = "prompt length (tokens)",
    ax=None,
    annotate: bool = True,
    fontsize: float = 7,
) -> Figure:
    """Heatmap of accuracy [len(depths), len(lengths)] in [0, 1]; rows are depths (0 = start of prompt).
    NaN cells (a length not run for this method) are left blank and marked "not run"; ``fontsize``: the cells'."""
    accuracy = np.asarray(accuracy, dtype=float)
    if accuracy.shape != (len(depths), len(lengths)):
        raise ValueError(
            f"accuracy must have shape (len(depths), len(lengths)) = ({len(depths)}, {len(lengths)}), "
            f"got {accuracy.shape}"
        )
    texts = [["not run" if np.isnan(accuracy[row, col]) else f"{accuracy[row, col]:.0%}" for col in range(len(lengths))]
             for row in range(len(depths))]
    return annotated_heatmap(
        accuracy,
        [str(n) for n in lengths],
        [f"{d:.0%}" for d in depths],
        texts if annotate else None,
        xlabel=length_label,
        ylabel="passkey depth",
        title=title,
        colorbar_label="accuracy",
        cmap="RdYlGn",
        vmin=0.0,
        vmax=1.0,
        fontsize=fontsize,
        figsize=(1.0 + 0.6 * len(lengths), 1.2 + 0.4 * len(depths)),
        ax=ax,
    )


def plot_passkey_panels(
    accuracies: Mapping[str, np.ndarray],
    lengths: Sequence[int],
    depths: Sequence[float],
    title: str = "Passkey retrieval",
    length_label: str = "prompt length (tokens)",
) -> Figure:
    """One passkey heatmap per method, side by side: {label: accuracy [len(depths), len(lengths)]}.

    Sized for a slide: drawn in a 1200 x 680 px box at 100 dpi, every label is at least 16 px.
    """
    n = len(accuracies)
    with plt.rc_context(_SLIDE_SIZES):
        fig, axes = plt.subplots(1, n, figsize=(1.0 + n * (1.8 + 1.0 * len(lengths)), 1.9 + 0.7 * len(depths)),
                                 squeeze=False)
        for ax, (label, accuracy) in zip(axes[0], accuracies.items()):
            plot_passkey_heatmap(accuracy, lengths, depths, title=label, length_label=length_label, ax=ax,
                                 fontsize=_SLIDE_SIZES["font.size"])
        fig.suptitle(title, fontsize=_SLIDE_SIZES["axes.titlesize"] + 1)
        fig.tight_layout()
    return fig


_SLIDE_SIZES = {"font.size": 15, "axes.titlesize": 16, "axes.labelsize": 15, "xtick.labelsize": 14,
                "ytick.labelsize": 14}  # points, for figures drawn about 1200 px wide on a slide


def plot_passkey_counts(
    correct: Mapping[str, np.ndarray],
    trials: int,
    lengths: Sequence[int],
    depths: Sequence[float],
    title: str = "Passkey retrieval",
    pretrained_length: int | None = None,
) -> Figure:
    """The paper's Fig. 4 layout, one panel per method: keys found [len(depths), len(lengths)] out of ``trials``.

    Every cell reads "k/n"; NaN cells (not run yet) stay blank and read "·". A dashed line marks
    ``pretrained_length`` between the columns it falls between. Sized for a 1280 x 720 projector.
    """
    if not correct:
        raise ValueError("correct must hold at least one method")
    trials = int(trials)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    n = len(correct)
    fig, axes = plt.subplots(1, n, figsize=(2.2 + 3.6 * n + 0.25 * n * len(lengths), 1.9 + 0.55 * len(depths)),
                             squeeze=False, sharey=True)
    image = None
    for ax, (label, counts) in zip(axes[0], correct.items()):
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (len(depths), len(lengths)):
            raise ValueError(f"correct[{label!r}] must have shape ({len(depths)}, {len(lengths)}), got {counts.shape}")
        image = ax.imshow(counts / trials, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        for row in range(len(depths)):
            for col in range(len(lengths)):
                value = counts[row, col]
                ax.text(col, row, "·" if np.isnan(value) else f"{int(value)}/{trials}", ha="center", va="center",
                        fontsize=14)
        ax.set_xticks(range(len(lengths)), [f"{n / 1024:g}k" for n in lengths], fontsize=13)
        ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths], fontsize=13)
        ax.set_xlabel("prompt length (tokens)", fontsize=14)
        ax.set_title(label, fontsize=15)
        if pretrained_length is not None:
            between = np.interp(pretrained_length, lengths, np.arange(len(lengths)))
            if 0 < between < len(lengths) - 1:
                ax.axvline(between + 0.5 if between == int(between) else between, color="black", ls="--", lw=1.8)
    axes[0][0].set_ylabel("passkey depth", fontsize=14)
    fig.suptitle(title, fontsize=16, y=1.04)
    fig.colorbar(image, ax=list(axes[0]), label="share of keys found", fraction=0.025, pad=0.02)
    return fig
