"""Plotting helpers of selfextend.viz (positions and attention): content of the pictures, and errors."""
import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm, to_rgba
from matplotlib.figure import Figure

import selfextend as se
from figure3 import FIGURE3_GROUPED, FIGURE3_SELFEXTEND
from selfextend.viz import (plot_attention, plot_attention_panels, plot_largest_position, plot_mask,
                            plot_position_usage, plot_relative_positions, plot_rope_scores, plot_rotation_coverage,
                            plot_selfextend_positions)
from selfextend.viz.positions import (FUTURE_COLOR, GROUPED_COLOR, NEIGHBOR_COLOR, UNSEEN_COLOR, cell_categories,
                                      position_counts)

matplotlib.use("Agg")



@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def cell_texts(ax) -> dict[tuple[int, int], str]:
    """(row, column) -> the text drawn in that cell of a grid axes."""
    cells = {}
    for text in ax.texts:
        x, y = text.get_position()
        cells[(int(math.floor(y)), int(math.floor(x)))] = text.get_text()
    return cells


def cell_colors(ax, shape) -> np.ndarray:
    """RGBA [rows, cols, 4] of the cells of the grid mesh of an axes."""
    ax.figure.canvas.draw()
    mesh = ax.collections[0]
    return np.asarray(mesh.get_facecolors()).reshape(*shape, 4)


def test_figure3_numbers_equal_the_paper():
    fig = plot_selfextend_positions(seq_len=10, group_size=2, window=4, pretrained_length=7)
    assert isinstance(fig, Figure)
    normal_ax, grouped_ax, selfextend_ax = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["Normal Attention", "Grouped Attention", "SelfExtend"]

    expected_normal = {(i, j): str(i - j) for i in range(10) for j in range(i + 1)}
    expected_grouped = {(i, j): str(i // 2 - j // 2) for i in range(10) for j in range(i + 1)}
    expected_selfextend = {(i, j): str(v) for i, row in enumerate(FIGURE3_SELFEXTEND) for j, v in enumerate(row)}
    assert cell_texts(normal_ax) == expected_normal  # no text in future cells either
    assert cell_texts(grouped_ax) == expected_grouped
    assert [cell_texts(grouped_ax)[(9, j)] for j in range(10)] == [str(v) for v in FIGURE3_GROUPED[-1]]
    assert cell_texts(selfextend_ax) == expected_selfextend


def test_figure3_colours_and_arrows():
    fig = plot_selfextend_positions(seq_len=10, group_size=2, window=4, pretrained_length=7)
    palette = (NEIGHBOR_COLOR, GROUPED_COLOR, UNSEEN_COLOR, FUTURE_COLOR)
    orange, blue, grey, light = (np.array(to_rgba(c)) for c in palette)
    colors = [cell_colors(ax, (10, 10)) for ax in fig.axes]
    for i in range(10):
        for j in range(10):
            if j > i:
                for panel in colors:
                    assert np.allclose(panel[i, j], light), (i, j)
                continue
            assert np.allclose(colors[0][i, j], grey if i - j >= 7 else orange), (i, j)
            assert np.allclose(colors[1][i, j], blue), (i, j)
            assert np.allclose(colors[2][i, j], blue if i - j >= 4 else orange), (i, j)
    texts = [t.get_text() for t in fig.texts]
    assert "// 2" in texts and "+ (4 - 4//2)" in texts and "SoftMax" in texts


def test_paper_colours_are_the_sampled_ones():
    # Sampled from the paper's Figure 3 (official README image).
    assert (NEIGHBOR_COLOR, GROUPED_COLOR, UNSEEN_COLOR, FUTURE_COLOR) == ("#D47D3A", "#97A9D9", "#74706F", "#EAEAF4")


def test_figure3_other_settings_follow_the_formulas():
    fig = plot_selfextend_positions(seq_len=16, group_size=3, window=6, pretrained_length=None, arrows=False)
    texts = cell_texts(fig.axes[2])
    for i in range(16):
        for j in range(i + 1):
            expected = i - j if i - j < 6 else i // 3 + 6 - 6 // 3 - j // 3
            assert texts[(i, j)] == str(expected)
    assert fig.texts == []


def test_relative_positions_with_queries_at_the_end():
    # Two decoding queries (positions 4 and 5) over 6 keys: the future cell is (0, 5) only.
    matrix = se.merged_relative_positions(2, 6, 2, 2)
    categories = cell_categories(matrix, se.grouped_attention_mask(2, 6, 2))
    assert categories.tolist() == [[2, 2, 2, 1, 1, 0], [2, 2, 2, 2, 1, 1]]
    fig = plot_relative_positions(matrix, se.grouped_attention_mask(2, 6, 2), tick_labels=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["4", "5"]
    assert set(cell_texts(ax)) == {(0, j) for j in range(5)} | {(1, j) for j in range(6)}


def test_relative_positions_errors():
    with pytest.raises(ValueError, match="matrix"):
        plot_relative_positions(torch.zeros(3, 3))  # float, not integer positions
    with pytest.raises(ValueError, match="matrix"):
        plot_relative_positions(torch.arange(3))
    with pytest.raises(ValueError, match="grouped"):
        plot_relative_positions(se.normal_relative_positions(3), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="grouped"):
        plot_relative_positions(se.normal_relative_positions(3), torch.ones(3, 3))  # not bool
    with pytest.raises(ValueError, match="pretrained_length"):
        plot_relative_positions(se.normal_relative_positions(3), pretrained_length=0)
    with pytest.raises(ValueError, match="group_size"):
        plot_selfextend_positions(10, 0, 4)


def test_plot_mask_cells_and_single_row():
    mask = se.grouped_attention_mask(10, 10, 4)
    fig = plot_mask(mask, true_label="grouped", false_label="neighbor")
    ax = fig.axes[0]
    expected = {(i, j): str(int(i - j >= 4)) for i in range(10) for j in range(i + 1)}
    assert cell_texts(ax) == expected
    colors = cell_colors(ax, (10, 10))
    assert np.allclose(colors[9, 0], to_rgba(GROUPED_COLOR)) and np.allclose(colors[9, 9], to_rgba(NEIGHBOR_COLOR))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["grouped", "neighbor", "future (masked)"]

    row = se.grouped_attention_mask(1, 12, 4)  # one decoding step
    texts = cell_texts(plot_mask(row).axes[0])
    assert [texts[(0, j)] for j in range(12)] == ["1"] * 8 + ["0"] * 4
    with pytest.raises(ValueError, match="mask"):
        plot_mask(torch.zeros(3, 3))


def test_position_counts_and_usage_plot():
    merged = se.merged_relative_positions(10, 10, 2, 4)
    naive = [0] * 7
    for i, row in enumerate(FIGURE3_SELFEXTEND):
        for value in row:
            naive[value] += 1
    assert position_counts(merged).tolist() == naive
    fig = plot_position_usage({"normal": se.normal_relative_positions(10), "SelfExtend": merged}, 7)
    heights = [bar.get_height() for bars in fig.axes[0].containers for bar in bars]
    assert heights == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1] + naive
    with pytest.raises(ValueError, match="pretrained_length"):
        plot_position_usage({"x": merged}, 0)
    with pytest.raises(ValueError, match="matrices"):
        plot_position_usage({}, 7)


def test_largest_position_curve():
    fig = plot_largest_position(range(1, 25), 7, 2, 4)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    selfextend = next(line for label, line in lines.items() if label.startswith("SelfExtend"))
    expected = [n - 1 if n <= 4 else (n - 1) // 2 + 4 - 2 for n in range(1, 25)]
    assert list(selfextend.get_ydata()) == expected
    assert "(L - w)·g + w = 10" in lines


def test_rope_plots():
    distances = torch.arange(100, dtype=torch.float64)
    fig = plot_rope_scores(distances, {"a": torch.cos(distances * 0.1)}, pretrained_length=50)
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), np.cos(np.arange(100) * 0.1))
    with pytest.raises(ValueError, match="scores"):
        plot_rope_scores(distances, {"a": torch.zeros(3)})

    fig = plot_rotation_coverage(64, 512, 4096)
    theta = [10000.0 ** (-2 * k / 64) for k in range(32)]
    seen = [min(511 * t / (2 * math.pi), 1.0) for t in theta]
    heights = [bar.get_height() for bars in fig.axes[0].containers for bar in bars]
    assert np.allclose(heights[32:], seen)


def test_plot_attention_masks_log_scale_and_tokens():
    weights = torch.softmax(torch.randn(1, 1, 5, 5).masked_fill(~se.causal_mask(5), float("-inf")), dim=-1)
    tokens = ["a", "b", "c", "d", "e"]
    fig = plot_attention(weights, tokens=tokens, mask=se.causal_mask(5), log_scale=True, window=2, title="w")
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # heatmap and colour bar
    image = ax.images[0]
    assert isinstance(image.norm, LogNorm)
    shown = image.get_array()
    assert shown.mask.tolist() == (~se.causal_mask(5)).tolist()
    assert np.allclose(shown.data, weights[0, 0].numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens

    with pytest.raises(ValueError, match="tokens"):
        plot_attention(weights, tokens=["a"])
    with pytest.raises(ValueError, match="values"):
        plot_attention(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="log_scale"):
        plot_attention(weights, log_scale=True, vmin=0.0)
    with pytest.raises(ValueError, match="mask"):
        plot_attention(weights, mask=torch.ones(3, 3, dtype=torch.bool))


def test_plot_attention_decoding_rows_are_the_last_positions():
    fig = plot_attention(torch.rand(2, 6))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["4", "5"]


def test_plot_attention_many_tokens_thin_the_labels():
    fig = plot_attention(torch.rand(512, 512))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[:3] == ["0", "50", "100"] and len(labels) <= 12


def test_attention_panels_share_one_scale():
    a, b = torch.rand(6, 6), 3 * torch.rand(6, 6)
    fig = plot_attention_panels({"normal": a, "SelfExtend": b}, boundaries={"SelfExtend": 2})
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heatmaps] == ["normal", "SelfExtend"]
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in heatmaps}
    assert norms == {(float(min(a.min(), b.min())), float(max(a.max(), b.max())))}
    assert len(fig.axes) == 3  # two panels and one shared colour bar
    assert len(heatmaps[1].lines) == 2 and len(heatmaps[0].lines) == 0  # boundary only where asked

    with pytest.raises(ValueError, match="shape"):
        plot_attention_panels({"a": torch.rand(3, 3), "b": torch.rand(4, 4)})
    with pytest.raises(ValueError, match="boundaries"):
        plot_attention_panels({"a": a}, boundaries={"b": 2})
    with pytest.raises(ValueError, match="panels"):
        plot_attention_panels({})


def test_grouped_by_length_in_the_layout_of_figure_2():
    from selfextend.viz import plot_grouped_by_length

    L, lengths = 8192, [1024, 2048, 4096, 8192, 12288, 16384]  # the real model's version
    curves = {"plain": [30, 31, 32, 33, 60, 200],
              "grouped g=2": [40, 41, 41, 42, 42, 43], "grouped g=4": [45, 45, 46, 46, 46, 47]}
    fig = plot_grouped_by_length(lengths, curves, L, ylabel="perplexity", title="Grouped attention alone",
                                 reach={"grouped g=2": 2 * L, "grouped g=4": 4 * L})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "Grouped attention alone" and ax.get_ylabel() == "perplexity"
    data = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    assert list(data) == list(curves)
    for label, values in curves.items():
        assert data[label].get_xdata().tolist() == lengths and data[label].get_ydata().tolist() == values
    assert to_rgba(data["plain"].get_color()) == to_rgba("black")  # plain drawn distinctly
    assert data["plain"].get_linewidth() > data["grouped g=2"].get_linewidth()
    assert len({to_rgba(line.get_color()) for line in data.values()}) == 3
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_xdata()[0] == L  # the pretrained length
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert [(d.get_xdata()[0], d.get_ydata()[0]) for d in diamonds] == [(2 * L, 43)]  # g=4's 4L is off the chart
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [*curves, "reach g·L"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1,024", "2,048", "4,096", "8,192", "16,384"]
    assert max(t.get_fontsize() for t in ax.get_legend().get_texts()) >= 14  # reads on a projector

    fig = plot_grouped_by_length([128, 256], {"x": [1, 2], "plain RoPE": [3, 4]}, 128, baseline="x", xscale="linear")
    assert to_rgba(fig.axes[0].lines[0].get_color()) == to_rgba("black") and fig.axes[0].get_xscale() == "linear"
    assert fig.axes[0].get_legend() is not None and fig.axes[0].get_title() == ""
    fig = plot_grouped_by_length([100, 150], {"plain": [1, 2], "g=4": [3, 3]}, 100, reach={"g=4": 400})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["plain", "g=4"]  # no reach in range
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["100", "150"]

    with pytest.raises(ValueError, match="shape"):
        plot_grouped_by_length([1, 2, 3], {"plain": [1, 2]}, 2)
    with pytest.raises(ValueError, match="increasing"):
        plot_grouped_by_length([2, 1], {"plain": [1, 2]}, 2)
    with pytest.raises(ValueError, match="reach"):
        plot_grouped_by_length([1, 2], {"plain": [1, 2]}, 2, reach={"g=2": 4})
    with pytest.raises(ValueError, match="baseline"):
        plot_grouped_by_length([1, 2], {"plain": [1, 2]}, 2, baseline="nope")
    with pytest.raises(ValueError, match="xscale"):
        plot_grouped_by_length([1, 2], {"plain": [1, 2]}, 2, xscale="symlog")
    with pytest.raises(ValueError, match="curves"):
        plot_grouped_by_length([1, 2], {}, 2)


def test_passkey_counts_read_k_of_n_and_blank_pending_cells():
    from selfextend.viz import plot_passkey_counts

    counts = {"plain": np.array([[3, 0], [2, np.nan]]), "SelfExtend": np.array([[3, 3], [1, 2]])}
    fig = plot_passkey_counts(counts, 3, [4096, 16384], [0.0, 1.0], pretrained_length=8192)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3/3", "0/3", "2/3", "·"] and [t.get_text() for t in fig.axes[1].texts][-1] == "2/3"
    assert len(fig.axes[0].lines) == 1  # the dashed L between 4k and 16k
    with pytest.raises(ValueError, match="shape"):
        plot_passkey_counts({"x": np.zeros((3, 2))}, 3, [4096, 16384], [0.0, 1.0])
    with pytest.raises(ValueError, match="trials"):
        plot_passkey_counts(counts, 0, [4096, 16384], [0.0, 1.0])
    plt.close(fig)


def test_perplexity_table_writes_every_value():
    from selfextend.viz import plot_perplexity_table

    values = np.array([[33.75, 61.33], [33.8, 31.94]])
    fig = plot_perplexity_table(values, ["plain", "SelfExtend"], [8192, 16384], pretrained_length=8192)
    assert [t.get_text() for t in fig.axes[0].texts] == ["33.8", "61.3", "33.8", "31.9"]
    assert len(fig.axes[0].lines) == 1
    with pytest.raises(ValueError, match="positive"):
        plot_perplexity_table(-values, ["a", "b"], [8192, 16384])
    plt.close(fig)


def test_map_comparison_writes_the_difference_of_hand_made_maps():
    from selfextend.viz import plot_map_comparison

    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    regions = torch.zeros(3, 3, dtype=torch.long)
    first = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 1, 0]])
    second = torch.tensor([[0.0, 0, 0], [1, 0, 0], [4, 0, 0]])  # row 2: +2 for key 0, -1 for key 1
    fig = plot_map_comparison((first, regions, causal), (second, regions, causal), ["a", "b"])
    assert cell_texts(fig.axes[2]) == {(2, 0): "+2", (2, 1): "-1"}  # equal cells carry no number
    assert cell_texts(fig.axes[0])[(2, 0)] == "2" and cell_texts(fig.axes[1])[(2, 0)] == "4"
    with pytest.raises(ValueError, match="labels"):
        plot_map_comparison((first, regions, causal), (second, regions, causal), ["a"])
    with pytest.raises(ValueError, match="one shape"):
        plot_map_comparison((first, regions, causal), (second[:2, :2], regions[:2, :2], causal[:2, :2]), ["a", "b"])


def test_largest_positions_linear_axes():
    from selfextend.viz import plot_largest_positions

    fig = plot_largest_positions([100, 200, 300], {"x": [10, 20, 30]}, 25, log=False)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert plot_largest_positions([100, 200], {"x": [10, 20]}, 25).axes[0].get_xscale() == "log"


def test_loss_panels_one_claim_each_differences_from_the_reference():
    from selfextend.viz import plot_loss_panels

    L, positions = 128, np.array([32.0, 96.0, 160.0, 224.0, 288.0])
    curves = {"plain": [3.0, 3.1, 4.0, 5.0, np.nan], "SelfExtend g=4": [3.0, 3.1, 3.1, 3.2, 3.1],
              "SelfExtend g=2": [3.0, 3.1, 3.1, 3.9, 4.5], "NTK": [3.05, 3.12, 3.2, 3.2, np.nan]}
    panels = [("plain breaks", ["plain", "SelfExtend g=4"]), ("g=2 breaks past its reach", ["SelfExtend g=2"]),
              ("NTK", ["NTK"])]
    fig = plot_loss_panels(positions, curves, L, panels, reference="SelfExtend g=4",
                           limits={"SelfExtend g=4": 416, "SelfExtend g=2": 240}, title="t")
    assert isinstance(fig, Figure)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["plain breaks", "g=2 breaks past its reach", "NTK"]
    assert not fig.axes[3].get_visible()  # 3 panels in a 2 x 2 grid: the fourth is hidden
    lines = [{line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")} for ax in shown]
    # panel 1 as measured, the others minus the reference, position by position (NaN: a gap)
    assert np.allclose(lines[0]["plain"].get_ydata(), curves["plain"], equal_nan=True)
    assert np.allclose(lines[1]["SelfExtend g=2"].get_ydata(), [0, 0, 0, 0.7, 1.4])
    assert np.allclose(lines[2]["NTK"].get_ydata(), [0.05, 0.02, 0.1, 0.0, np.nan], equal_nan=True)
    zero = lines[1]["SelfExtend g=4 (zero)"]
    assert zero.get_ydata()[0] == 0 and to_rgba(zero.get_color()) == to_rgba(lines[0]["SelfExtend g=4"].get_color())
    assert to_rgba(lines[0]["plain"].get_color()) == to_rgba("black")  # plain drawn distinctly, wider, below
    assert lines[0]["plain"].get_linewidth() > lines[0]["SelfExtend g=4"].get_linewidth()
    assert lines[0]["plain"].get_zorder() < lines[0]["SelfExtend g=4"].get_zorder()
    # dotted L in every panel; a dashed reach only where it lies inside the plot (416 is past 320)
    for ax in shown:
        assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [L]
    assert [line.get_xdata()[0] for line in shown[1].lines if line.get_linestyle() == "--"] == [240]
    assert not [line for line in shown[0].lines if line.get_linestyle() == "--"]
    for ax in shown[1:]:  # the lowest panel of each column labels the positions (shown[1]: nothing below it)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "128 (L)", "256 (2L)"]
        assert ax.get_xlabel() == "token position"
    assert fig.get_suptitle() == "t"
    assert min(t.get_fontsize() for ax in shown for t in ax.get_legend().get_texts()) >= 12  # reads on a projector

    with pytest.raises(ValueError, match="reference"):
        plot_loss_panels(positions, curves, L, panels, reference="nope")
    with pytest.raises(ValueError, match="not in curves"):
        plot_loss_panels(positions, curves, L, [("x", ["missing"])], reference="plain")
    with pytest.raises(ValueError, match="shape"):
        plot_loss_panels(positions, {"plain": [1.0, 2.0]}, L, [("x", ["plain"])], reference="plain")
    with pytest.raises(ValueError, match="panels"):
        plot_loss_panels(positions, curves, L, [], reference="plain")
