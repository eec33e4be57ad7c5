"""The committed figures are what the code produces, byte for byte, and save_figure is reproducible.

Each recipe below is the exact viz call of the notebook cell that saves the figure (same arguments);
if a notebook or a plotting function changes, re-run `make figures` and commit figures/.
"""
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

import selfextend as se
from selfextend.viz import (plot_largest_position, plot_mask, plot_position_usage, plot_rotation_coverage,
                            plot_selfextend_positions, save_figure, style)

matplotlib.use("Agg")
FIGURES = Path(__file__).resolve().parents[1] / "figures"

# name -> (notebook, recipe): the cheap figures (integer position maps and closed-form curves).
RECIPES = {
    "fig3_selfextend_positions": (
        "02_position_matrices",
        lambda: plot_selfextend_positions(seq_len=10, group_size=2, window=4, pretrained_length=7),
    ),
    "relative_positions_used": (
        "02_position_matrices",
        lambda: plot_position_usage(
            {"normal attention": se.normal_relative_positions(10),
             "SelfExtend": se.merged_relative_positions(10, 10, 2, 4)},
            7, title="Relative positions used, N = 10, w = 4, g = 2"),
    ),
    "largest_relative_position": (
        "02_position_matrices",
        lambda: plot_largest_position(range(1, 25), 7, 2, 4, title="Largest relative position, L = 7, w = 4, g = 2"),
    ),
    "merge_mask": (
        "03_algorithm1_merge_mask",
        lambda: plot_mask(se.grouped_attention_mask(10, 10, 4), true_label="grouped logit (i - j >= w)",
                          false_label="neighbor logit (i - j < w)", title="Merge mask, N = 10, w = 4"),
    ),
    "rope_rotation_coverage": (
        "01_rope_relative_positions",
        lambda: plot_rotation_coverage(64, 512, 4096, 10000.0,
                                       title="Angles per RoPE pair: pretraining (L = 512) vs N = 4096"),
    ),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_committed_figure_is_what_the_code_draws(name, tmp_path):
    notebook, recipe = RECIPES[name]
    with style():
        fig = recipe()
        save_figure(fig, name, directory=tmp_path)
    plt.close(fig)
    for suffix in (".png", ".svg"):
        committed = FIGURES / f"{name}{suffix}"
        assert committed.is_file(), f"{committed.name} is missing: run notebooks/{notebook}.ipynb (make figures)"
        fresh = (tmp_path / f"{name}{suffix}").read_bytes()
        assert fresh == committed.read_bytes(), (
            f"figures/{name}{suffix} differs from what the code draws now: re-run notebooks/{notebook}.ipynb "
            "(make figures) and commit figures/"
        )


def test_each_recipe_matches_a_saving_cell_of_its_notebook():
    # A recipe whose notebook no longer saves that figure would test nothing.
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for name, (notebook, _) in RECIPES.items():
        text = (notebooks / f"{notebook}.ipynb").read_text()
        assert f'save_figure(fig, \\"{name}\\")' in text, (name, notebook)


SAVE_SCRIPT = """
import sys
import matplotlib
matplotlib.use("Agg")
from selfextend.viz import plot_selfextend_positions, save_figure, style
with style():
    save_figure(plot_selfextend_positions(), "probe", directory=sys.argv[1])
"""


def test_save_figure_is_byte_reproducible_across_processes(tmp_path):
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(folder)], check=True)
        outputs.append({suffix: (folder / f"probe{suffix}").read_bytes() for suffix in (".png", ".svg")})
    assert outputs[0][".png"] == outputs[1][".png"]
    assert outputs[0][".svg"] == outputs[1][".svg"]
    assert b"<dc:date>" not in outputs[0][".svg"]  # no time stamp in the file
