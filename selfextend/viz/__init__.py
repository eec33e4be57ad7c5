"""Plotting helpers: every function returns a matplotlib Figure; save_figure writes it to figures/.

What lives here: the pictures of the mechanism (``positions``: Figure 3 and its relatives;
``attention``: heatmaps), of the experiments (``experiments``, ``passkey``, ``heatmap``), of the
kernel and its benchmarks (``benchmark``: the kernel's and the real model's), of SelfExtend's relatives (``methods``: maps, reach, results), of the room server's load test (``hub``), and ``save`` (one style file, byte-reproducible PNG/SVG).

What it may import: matplotlib, numpy and the mechanism at the top of ``selfextend``. Never
``selfextend.hf`` or ``selfextend.tiny``: the data to plot comes in as arguments
(``tests/test_layout.py`` checks it).
"""
from .attention import plot_attention, plot_attention_panels
from .benchmark import (plot_attention_benchmark, plot_attention_schedule, plot_real_model_benchmark,
                        read_benchmark_csv, read_real_model_csv)
from .experiments import (plot_ablation_grid, plot_perplexity_table, plot_accuracy_vs_length, plot_attention_maps,
                          plot_attention_rows, plot_bits_by_length, plot_grouped_by_length, plot_loss_by_position,
                          plot_loss_panels, plot_pooled_attention)
from .measured import PLOT_DECIMALS, round_measured
from .passkey import plot_passkey_counts, plot_passkey_heatmap, plot_passkey_panels
from .methods import (plot_largest_positions, plot_map_comparison, plot_method_gallery, plot_position_map,
                      plot_relatives_results)
from .display import WithFallback, figure_png
from .hub import plot_hub_load
from .positions import (plot_largest_position, plot_mask, plot_position_explorer, plot_position_usage,
                        plot_relative_positions, plot_rope_scores, plot_rotation_coverage,
                        plot_selfextend_positions, position_caption)
from .save import figures_dir, save_figure, style, use_style

__all__ = [
    "plot_passkey_counts",
    "plot_perplexity_table",
    "PLOT_DECIMALS",
    "WithFallback",
    "figure_png",
    "plot_position_explorer",
    "position_caption",
    "round_measured",
    "figures_dir",
    "plot_ablation_grid",
    "plot_accuracy_vs_length",
    "plot_attention",
    "plot_attention_benchmark",
    "plot_attention_maps",
    "plot_attention_panels",
    "plot_attention_rows",
    "plot_attention_schedule",
    "plot_bits_by_length",
    "plot_grouped_by_length",
    "plot_hub_load",
    "plot_largest_position",
    "plot_largest_positions",
    "plot_loss_by_position",
    "plot_loss_panels",
    "plot_mask",
    "plot_map_comparison",
    "plot_method_gallery",
    "plot_position_map",
    "plot_passkey_heatmap",
    "plot_passkey_panels",
    "plot_pooled_attention",
    "plot_position_usage",
    "plot_real_model_benchmark",
    "plot_relative_positions",
    "plot_relatives_results",
    "plot_rope_scores",
    "plot_rotation_coverage",
    "plot_selfextend_positions",
    "read_benchmark_csv",
    "read_real_model_csv",
    "save_figure",
    "style",
    "use_style",
]
