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
) -> Figure:
    """Heatmap of accuracy [len(depths), len(lengths)] in [0, 1]; rows are depths (0 = start of prompt).
    NaN cells (a length not run for this method) are left blank and marked "not run"."""
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
        fontsize=7,
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
    """One passkey heatmap per method, side by side: {label: accuracy [len(depths), len(lengths)]}."""
    fig, axes = plt.subplots(1, len(accuracies), figsize=(1.6 + 3.0 * len(accuracies) + 0.5 * len(lengths), 2.6),
                             squeeze=False)
    for ax, (label, accuracy) in zip(axes[0], accuracies.items()):
        plot_passkey_heatmap(accuracy, lengths, depths, title=label, length_label=length_label, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
