"""Figures shown on the projector: every label of a slide figure is legible at 1280 x 720.

The slides (tools/site/slides.py) draw a figure alone on its sub-slide, scaled to fit a 1200 x 680 px
box; the notebook's figure is a 100 dpi PNG. A label of s points is then s * 100 / 72 * scale pixels on a
1280 x 720 screen, scale = min(1200 / width, 680 / height) of the figure's tight size. Below 16 px
(about 12 pt on a laptop screen) the back of a room cannot read it.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from selfextend.viz import plot_passkey_panels, plot_pooled_attention, plot_selfextend_positions, style  # noqa: E402

DPI, BOX, MIN_PX = 100, (1200, 680), 16.0


def smallest_projected_px(fig: Figure) -> tuple[float, str]:
    """(size in screen pixels, text) of the smallest visible label of ``fig`` drawn in the slide's box."""
    renderer = fig.canvas.get_renderer()
    bbox = fig.get_tightbbox(renderer)
    scale = min(BOX[0] / (bbox.width * DPI), BOX[1] / (bbox.height * DPI))
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()
             and t.get_window_extent(renderer).width > 0]
    smallest = min(texts, key=lambda t: t.get_fontsize())
    return smallest.get_fontsize() * DPI / 72 * scale, smallest.get_text()


def _passkey():
    rng = np.random.default_rng(0)
    lengths = [4096, 8192, 12288, 16384, 32768]
    return plot_passkey_panels({m: rng.random((3, len(lengths))) for m in ("plain RoPE", "SelfExtend g=8 w=1024")},
                               lengths, [0.0, 0.5, 1.0], title="SmolLM2-135M passkey retrieval (L = 8,192)")


def _head_attention():
    rng = np.random.default_rng(0)
    maps = {m: rng.random((16, 16)) / 16 for m in ("plain RoPE", "SelfExtend g=8 w=1024")}
    rows = {m: rng.random(64) / 64 for m in maps}
    return plot_pooled_attention(maps, rows, 1024, 256, 8192, title="SmolLM2-135M, layer 15 head 3, 16,384 tokens")


FIGURES = {  # the slide figures of notebooks 02 and 11, as those notebooks draw them
    "fig3_selfextend_positions": lambda: plot_selfextend_positions(seq_len=10, group_size=2, window=4,
                                                                   pretrained_length=7),
    "smollm2_passkey_heatmap": _passkey,
    "smollm2_head_attention": _head_attention,
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_labels_are_legible_on_the_projector(name):
    with style():
        fig = FIGURES[name]()
        size, text = smallest_projected_px(fig)
    assert size >= MIN_PX, f"{name}: the label {text!r} is {size:.1f} px at 1280 x 720 (at least {MIN_PX})"


def test_the_measure_can_fail():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6))
    ax.set_title("tiny", fontsize=6)
    assert smallest_projected_px(fig)[0] < MIN_PX
