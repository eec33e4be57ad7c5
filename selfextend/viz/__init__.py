"""Plotting helpers: every function returns a matplotlib Figure; save_figure writes it to figures/."""
from .passkey import plot_passkey_heatmap
from .save import figures_dir, save_figure, style, use_style

__all__ = ["figures_dir", "plot_passkey_heatmap", "save_figure", "style", "use_style"]
