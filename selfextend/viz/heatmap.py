"""One annotated heatmap (a number in every cell), shared by the passkey and ablation grids."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def annotated_heatmap(
    values: np.ndarray,
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    cell_texts: Sequence[Sequence[str]] | None,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    colorbar_label: str,
    cmap: str,
    figsize: tuple[float, float],
    vmin: float | None = None,
    vmax: float | None = None,
    fontsize: float = 8,
    text_colors: Sequence[Sequence[str]] | None = None,
    ax=None,
) -> Figure:
    """Heatmap of values [rows, columns] with ``cell_texts`` (if given) written in the cells and a colour bar."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(column_labels)), list(column_labels))
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    for row in range(values.shape[0] if cell_texts is not None else 0):
        for col in range(values.shape[1]):
            color = None if text_colors is None else text_colors[row][col]
            ax.text(col, row, cell_texts[row][col], ha="center", va="center", fontsize=fontsize, color=color)
    fig.colorbar(image, ax=ax, label=colorbar_label, fraction=0.046, pad=0.04)
    return fig
