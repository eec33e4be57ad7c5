"""RoPE against explicit 2-D rotations."""
import math

import pytest
import torch

from naive import rotate_pairs as naive_rotation
from selfextend.rope import apply_rope, inverse_frequencies, rope_cos_sin, rotate_half, rotate_pairs


def test_rotate_half_layout():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_half(x).tolist() == [-3.0, -4.0, 1.0, 2.0]


@pytest.mark.parametrize("position", [0, 1, 7, 1000])
def test_matches_pairwise_rotation(position):
    x = torch.randn(16, dtype=torch.float64)
    rotated = apply_rope(x[None], torch.tensor([position]))[0]
    assert torch.allclose(rotated, naive_rotation(x, position), atol=1e-12)


def test_accurate_at_large_positions_in_float32():
    positions = torch.tensor([100_000, 123_457, 131_071])
    x = torch.randn(3, 128)
    rotated = apply_rope(x, positions)
    expected = torch.stack([naive_rotation(x[i], int(p)) for i, p in enumerate(positions)])
    assert (rotated.double() - expected).abs().max() < 2e-5


def test_angle_is_formed_in_float64():
    cos, _ = rope_cos_sin(torch.tensor([120_000]), 2)  # theta_0 = 1: the angle is the position itself
    assert abs(cos[0, 0].item() - math.cos(120_000)) < 1e-6


def test_score_depends_only_on_distance():
    q, k = torch.randn(1, 32), torch.randn(1, 32)
    scores = []
    for i, j in [(5, 2), (103, 100), (40_003, 40_000)]:
        qr, kr = apply_rope(q, torch.tensor([i])), apply_rope(k, torch.tensor([j]))
        scores.append((qr @ kr.T).item())
    assert max(scores) - min(scores) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_precision_returns_input_dtype(dtype):
    x = torch.randn(2, 3, 9, 16)
    rotated = apply_rope(x.to(dtype), torch.arange(9))
    assert rotated.dtype == dtype
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-6}[dtype]
    assert torch.allclose(rotated.float(), apply_rope(x, torch.arange(9)), atol=tolerance * 4, rtol=tolerance)


def test_per_batch_positions():
    x = torch.randn(2, 3, 5, 8)
    positions = torch.tensor([[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])
    rotated = apply_rope(x, positions)
    assert torch.allclose(rotated[1], apply_rope(x[1:], torch.arange(10, 15))[0])
    assert torch.allclose(rotated[0], apply_rope(x[:1], torch.arange(5))[0])


@pytest.mark.parametrize(
    "x,positions,parameter",
    [
        (torch.randn(4, 7), torch.arange(4), "head_dim"),
        (torch.randn(4, 8), torch.arange(5), "positions"),
        (torch.randn(4, 8), torch.arange(4.0), "positions"),
        (torch.arange(32).view(4, 8), torch.arange(4), "x"),
        (torch.randn(2, 1, 4, 8), torch.zeros(3, 4, dtype=torch.long), "positions"),
    ],
)
def test_bad_inputs(x, positions, parameter):
    with pytest.raises(ValueError, match=parameter):
        apply_rope(x, positions)


def test_rotate_pairs_with_scaled_frequencies_is_interpolation():
    # Dividing every frequency by s turns p exactly as the plain rotation turns p / s (PI).
    x = torch.randn(16, dtype=torch.float64)
    turned = rotate_pairs(x[None], torch.tensor([40]), inverse_frequencies(16) / 4)[0]
    assert torch.allclose(turned, naive_rotation(x, 10), atol=1e-12)


@pytest.mark.parametrize("grad", [False, True])
def test_turn_pairs_into_out_equals_the_textbook_expression(grad):
    """turn_pairs writes rows of a buffer in place, with or without autograd, layout of x not contiguous."""
    from selfextend.rope import turn_pairs

    x = torch.randn(1, 5, 2, 8).transpose(1, 2).requires_grad_(grad)  # [b, h, n, d] seen through [b, n, h, d]
    cos, sin = torch.randn(5, 4), torch.randn(5, 4)
    x1, x2 = x.detach().chunk(2, dim=-1)
    expected = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    buffer = torch.zeros(1, 2, 9, 8)
    turn_pairs(x, cos, sin, out=buffer[:, :, 3:8])
    assert torch.equal(buffer[:, :, 3:8].detach(), expected)
    assert not buffer[:, :, :3].any() and not buffer[:, :, 8:].any()
    assert torch.equal(turn_pairs(x, cos, sin).detach(), expected)
