"""Needle-in-a-haystack picture: passkey accuracy over prompt length x passkey depth."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_passkey_heatmap(
    accuracy,
    lengths: Sequence[int],
    depths: Sequence[float],
    title: str = "Passkey retrieval",
    length_label: str = "prompt length (tokens)",
    ax=None,
    annotate: bool = True,
) -> Figure:
    """Heatmap of accuracy [len(depths), len(lengths)] in [0, 1]; rows are depths (0 = start of prompt)."""
    accuracy = np.asarray(accuracy, dtype=float)
    if accuracy.shape != (len(depths), len(lengths)):
        raise ValueError(
            f"accuracy must have shape (len(depths), len(lengths)) = ({len(depths)}, {len(lengths)}), "
            f"got {accuracy.shape}"
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(lengths), 1.2 + 0.4 * len(depths)))
    else:
        fig = ax.figure
    image = ax.imshow(accuracy, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{d:.0%}" for d in depths])
    ax.set_xlabel(length_label)
    ax.set_ylabel("passkey depth")
    ax.set_title(title)
    if annotate:
        for row in range(accuracy.shape[0]):
            for col in range(accuracy.shape[1]):
                ax.text(col, row, f"{accuracy[row, col]:.0%}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="accuracy", fraction=0.046, pad=0.04)
    return fig
