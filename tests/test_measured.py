"""Figures of model numbers are byte-identical on every CPU, yet a real change still changes them.

The design (selfextend/viz/measured.py): compute in float64, round to PLOT_DECIMALS before plotting,
and keep the byte-for-byte figures check of .ci/run. These tests check both halves on the tiny LM:
float64 noise of the size seen between CPU kernels leaves the bytes alone, a 1% change does not.
"""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from selfextend.tiny import evaluate
from selfextend.tiny.model import PLAIN, checkpoints_dir, load_checkpoint, selfextend
from selfextend.viz import PLOT_DECIMALS, plot_attention_maps, plot_loss_by_position, round_measured, save_figure, style

matplotlib.use("Agg")


def figure_bytes(draw, tmp_path, name) -> tuple[bytes, bytes]:
    with style():
        fig = draw()
        save_figure(fig, name, directory=tmp_path)
    plt.close(fig)
    return (tmp_path / f"{name}.png").read_bytes(), (tmp_path / f"{name}.svg").read_bytes()


@pytest.fixture(scope="module")
def measured_curves():
    """Loss by position of the real tiny LM at 4 x L_train in float64, binned as notebook 05 bins it."""
    torch.set_num_threads(2)
    model, _ = load_checkpoint(checkpoints_dir() / "tiny_lm_base.pt")
    model = model.double()
    length = 4 * model.config.train_length
    curves = {}
    for method in (PLAIN, selfextend(8, 32)):
        bits = evaluate.position_bits(model, length, method, count=2, seed=0, batch_size=2)
        assert bits.dtype == torch.float64
        centres, curves[method.label] = evaluate.smooth_log(bits.mean(0), per_octave=6, start=32)
    return centres, curves, model.config.train_length


def test_float32_values_are_refused():
    with pytest.raises(ValueError, match="float64"):
        round_measured(torch.ones(3))
    with pytest.raises(ValueError, match="float64"):
        round_measured(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="decimals"):
        round_measured(torch.ones(3, dtype=torch.float64), decimals=-1)


def test_round_measured_keeps_structure_and_precision():
    out = round_measured({"a": torch.tensor([1.23456789, 2.0], dtype=torch.float64), "b": {3: 0.5000004}})
    np.testing.assert_array_equal(out["a"], [1.234568, 2.0])
    assert float(out["b"][3]) == 0.5
    assert PLOT_DECIMALS == 6


def test_cpu_noise_leaves_the_bytes_and_a_one_percent_change_does_not(measured_curves, tmp_path):
    centres, curves, train_length = measured_curves

    def draw(scale_noise=0.0, change=None):
        noisy = {}
        for label, values in curves.items():
            values = values.clone()
            # float64 differences between CPU kernels, measured on this model: about 1e-13 relative
            values = values * (1 + scale_noise * torch.linspace(-1, 1, values.numel(), dtype=torch.float64))
            if change is not None and label == change:
                values[values.numel() // 2] *= 1.01  # one plotted value, 1% higher
            noisy[label] = values
        return lambda: plot_loss_by_position(centres, round_measured(noisy), train_length, ylim=(1.5, 7.0))

    reference = figure_bytes(draw(), tmp_path, "reference")
    assert figure_bytes(draw(scale_noise=1e-13), tmp_path, "noise") == reference
    changed = figure_bytes(draw(change=selfextend(8, 32).label), tmp_path, "changed")
    assert changed[0] != reference[0] and changed[1] != reference[1]


def test_float32_noise_would_change_the_bytes_without_the_design(measured_curves, tmp_path):
    """Why the design exists: noise of float32 size (1e-6 relative) moves unrounded SVG coordinates."""
    centres, curves, train_length = measured_curves
    plain = {k: v.numpy() for k, v in curves.items()}
    noisy = {k: v.numpy() * (1 + 1e-6) for k, v in curves.items()}
    a = figure_bytes(lambda: plot_loss_by_position(centres, plain, train_length), tmp_path, "a")
    b = figure_bytes(lambda: plot_loss_by_position(centres, noisy, train_length), tmp_path, "b")
    assert a[1] != b[1]


def test_heatmap_of_rounded_weights_ignores_noise(tmp_path):
    generator = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(64, 64, generator=generator, dtype=torch.float64), -1).tril()
    draw = lambda w: lambda: plot_attention_maps({"head": round_measured(w)}, title="probe")  # noqa: E731
    reference = figure_bytes(draw(weights), tmp_path, "w0")
    assert figure_bytes(draw(weights * (1 + 1e-13)), tmp_path, "w1") == reference
