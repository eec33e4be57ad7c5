"""The slider figure of notebook 02 (plot_position_explorer, position_caption) and WithFallback, the
output that shows a widget in Jupyter and a picture plus a sentence everywhere else."""
from __future__ import annotations

import base64

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from selfextend.viz.display import WIDGET_VIEW, WithFallback, figure_png  # noqa: E402
from selfextend.viz.positions import (GROUPED, GROUPED_COLOR, NEIGHBOR_COLOR, UNSEEN, UNSEEN_COLOR,  # noqa: E402
                                      cell_categories, plot_position_explorer, position_caption)


def panel_colors(ax, n: int) -> np.ndarray:
    """RGBA [n, n] of the cells of one panel (pcolormesh rows from the top)."""
    ax.figure.canvas.draw()  # the mesh maps its values to colours when drawn
    return np.asarray(ax.collections[0].get_facecolors()).reshape(n, n, 4)


def test_caption_hand_checked():
    # N = 10, g = 2, w = 4: (10-1)//2 + 4 - 2 = 6 < 7; normal 9; reach (7 - 4)*2 + 4 = 10
    assert position_caption(10, 2, 4, 7) == ("largest relative position: SelfExtend 6 < L = 7, normal attention "
                                             "9 ≥ L; SelfExtend stays below L up to N = (L - w)·g + w = 10")
    # N = 18: 17//2 + 2 = 10 >= 7
    assert "SelfExtend 10 ≥ L = 7" in position_caption(18, 2, 4, 7)
    # N <= w: plain attention, largest N - 1 = 2
    assert "SelfExtend 2 < L = 7, normal attention 2 < L" in position_caption(3, 2, 4, 7)


def test_grey_cells_in_both_panels_beyond_the_reach():
    # N = 12 > reach 10 (L = 7, w = 4, g = 2): the SelfExtend cells (i, j) with i in {10, 11} and
    # j in {0, 1} hold i//2 + 2 - j//2 = 5 + 2 - 0 = 7 >= L: never seen; (9, 0) holds 9//2 + 2 = 6.
    fig = plot_position_explorer(12, 2, 4, 7)
    normal, extended = (panel_colors(ax, 12) for ax in fig.axes[:2])
    for i, j in [(10, 0), (10, 1), (11, 0), (11, 1)]:
        assert np.allclose(extended[i, j], to_rgba(UNSEEN_COLOR))
    assert np.allclose(extended[9, 0], to_rgba(GROUPED_COLOR))
    assert np.allclose(extended[11, 8], to_rgba(NEIGHBOR_COLOR))  # i - j = 3 < w
    assert np.allclose(normal[7, 0], to_rgba(UNSEEN_COLOR)) and np.allclose(normal[6, 0], to_rgba(NEIGHBOR_COLOR))
    grey = sum(np.allclose(c, to_rgba(UNSEEN_COLOR)) for c in extended.reshape(-1, 4))
    assert grey == 4
    plt.close(fig)


def test_within_the_reach_selfextend_has_no_grey():
    fig = plot_position_explorer(40, 4, 8, 16)  # reach (16 - 8)*4 + 8 = 40
    extended = panel_colors(fig.axes[1], 40).reshape(-1, 4)
    assert not any(np.allclose(c, to_rgba(UNSEEN_COLOR)) for c in extended)
    plt.close(fig)


def test_numbers_while_they_fit_colours_after():
    def numbers(n):
        fig = plot_position_explorer(n, 2, 4, 7)
        count = sum(len(ax.texts) for ax in fig.axes[:2])
        size = fig.get_size_inches().tolist()
        plt.close(fig)
        return count, size

    count16, size16 = numbers(16)
    assert count16 == 2 * 16 * 17 // 2  # every causal cell of both panels
    count17, size17 = numbers(17)
    assert count17 == 0 and size16 == size17 == numbers(40)[1]  # same size whatever N is


def test_bad_settings_name_the_parameter():
    with pytest.raises(ValueError, match="window"):
        plot_position_explorer(10, 2, 7, 7)  # w must be < L
    with pytest.raises(ValueError, match="seq_len"):
        position_caption(0, 2, 4, 7)


def test_grouped_cells_beyond_L_are_unseen():
    # One row: grouped positions 7 7 6 | neighbor 3 2 1 0 (L = 7): the 7s are never seen, grouped or not.
    matrix = np.array([[7, 7, 6, 3, 2, 1, 0]])
    grouped = np.array([[True, True, True, False, False, False, False]])
    categories = cell_categories(matrix, grouped, pretrained_length=7, causal=np.ones((1, 7), dtype=bool))
    assert categories[0, :3].tolist() == [UNSEEN, UNSEEN, GROUPED]


class FakeWidget:
    def _repr_mimebundle_(self, **kwargs):
        return {"text/plain": "VBox(children=(HBox(children=(IntSlider(…", WIDGET_VIEW: {"model_id": "abc"}}


def test_with_fallback_bundle():
    fig = plot_position_explorer(10, 2, 4, 7)
    png = figure_png(fig)
    plt.close(fig)
    bundle = WithFallback(FakeWidget(), memoryview(png), "Sliders: run this cell in Jupyter.")._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW, "image/png", "text/plain"}
    assert bundle[WIDGET_VIEW] == {"model_id": "abc"}
    assert bundle["text/plain"] == "Sliders: run this cell in Jupyter." and "VBox" not in bundle["text/plain"]
    assert base64.b64decode(bundle["image/png"]) == png


def test_with_fallback_on_a_real_widget():
    widgets = pytest.importorskip("ipywidgets")
    slider = widgets.IntSlider()
    bundle = WithFallback(slider, b"\x89PNG\r\n\x1a\n", "a sentence")._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == slider.model_id and bundle["text/plain"] == "a sentence"


def test_with_fallback_errors():
    with pytest.raises(ValueError, match="widget"):
        WithFallback(object(), b"\x89PNG", "text")
    with pytest.raises(ValueError, match="png"):
        WithFallback(FakeWidget(), b"GIF89a", "text")
    with pytest.raises(ValueError, match="text"):
        WithFallback(FakeWidget(), b"\x89PNG", " ")
