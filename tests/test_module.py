"""SelfExtendAttn: the old se_attn README example and call, done right."""
import pytest
import torch
from einops import rearrange

from naive import self_extend_loop
from selfextend import SelfExtendAttn


def test_old_readme_example_runs_unchanged():
    dim = 512  # Dimension of model
    g_size = 2  # Group size
    w_size = 4  # Window size for neighbor tokens
    self_extend = SelfExtendAttn(dim, g_size, w_size)
    q = torch.randn(1, 10, dim)
    k = torch.randn(1, 10, dim)
    v = torch.randn(1, 10, dim)
    pos = torch.arange(0, 10).unsqueeze(0)  # Example positional indices
    output = self_extend(q, k, v, pos)
    assert output.shape == (1, 10, 512)  # documented shape (the old package returned (1, 1, 10, 512))
    expected, _ = self_extend_loop(q[:, None], k[:, None], v[:, None], 2, 4)
    assert (output.double() - expected[:, 0]).abs().max() < 1e-5


@pytest.mark.parametrize("seq_len", [1, 3, 4, 25])
def test_multi_head_any_length_matches_loop(seq_len):
    module = SelfExtendAttn(32, 3, 4, heads=4)
    q, k, v = (torch.randn(2, seq_len, 32) for _ in range(3))
    out = module(q, k, v)
    split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=4)
    expected, _ = self_extend_loop(split(q), split(k), split(v), 3, 4)
    assert out.shape == (2, seq_len, 32)
    assert (out.double() - rearrange(expected, "b h n d -> b n (h d)")).abs().max() < 1e-5


def test_position_offsets_and_decoding():
    module = SelfExtendAttn(16, 2, 3, heads=2)
    q, k, v = (torch.randn(3, 12, 16) for _ in range(3))
    pos = torch.arange(12) + 500
    full = module(q, k, v, pos)
    step = module(q[:, -1:], k, v, pos)
    assert torch.allclose(step, full[:, -1:], atol=1e-6)
    per_example = torch.stack([pos, pos + 7, pos * 3])
    out = module(q, k, v, per_example)
    split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=2)
    expected, _ = self_extend_loop(split(q), split(k), split(v), 2, 3, positions=per_example)
    assert (out.double() - rearrange(expected, "b h n d -> b n (h d)")).abs().max() < 1e-5


def test_bfloat16_and_qk_norm():
    module = SelfExtendAttn(64, 4, 8, qk_norm=True, heads=4)
    q, k, v = (torch.randn(2, 40, 64) for _ in range(3))
    reference = module(q, k, v)
    out = module.to(torch.bfloat16)(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert (out.float() - reference).abs().max() < 5e-2


def test_scaled_logits_do_not_saturate():
    # The old package never scaled by 1/sqrt(d): its softmax was one-hot. Here a row of random
    # 512-wide vectors keeps spread-out weights.
    from selfextend.attention import self_extend_attention

    q, k, v = (torch.randn(1, 1, 64, 512) for _ in range(3))
    _, weights = self_extend_attention(q, k, v, 2, 4, return_weights=True)
    assert weights[0, 0, -1].max() < 0.5


@pytest.mark.parametrize(
    "args,parameter",
    [
        ((512, 0, 4), "g_size"),
        ((512, 2, 0), "w_size"),
        ((30, 2, 4, False, 4), "divisible"),
        ((12, 2, 4, False, 4), "even"),
        ((512, 2, 4, False, 0), "heads"),
    ],
)
def test_bad_constructor_arguments(args, parameter):
    with pytest.raises(ValueError, match=parameter):
        SelfExtendAttn(*args)


def test_bad_forward_arguments():
    module = SelfExtendAttn(16, 2, 4)
    x = torch.randn(1, 6, 16)
    with pytest.raises(ValueError, match="dim=16"):
        module(torch.randn(1, 6, 8), x, x)
    with pytest.raises(ValueError, match="3 dimensions"):
        module(x[0], x, x)
    with pytest.raises(ValueError, match="pos must have shape"):
        module(x, x, x, torch.arange(7))
