"""SelfExtend attention against a per-query loop (tests/naive.py) and torch SDPA; every kernel."""
import pytest
import torch
import torch.nn.functional as F

from naive import self_extend_loop
from selfextend.attention import self_extend_attention
from selfextend.rope import apply_rope


def qkv(batch=2, heads=2, kv_heads=None, q_len=12, k_len=None, head_dim=8, dtype=torch.float32):
    k_len = q_len if k_len is None else k_len
    kv_heads = heads if kv_heads is None else kv_heads
    q = torch.randn(batch, heads, q_len, head_dim, dtype=dtype)
    k = torch.randn(batch, kv_heads, k_len, head_dim, dtype=dtype)
    v = torch.randn(batch, kv_heads, k_len, head_dim, dtype=dtype)
    return q, k, v


def sdpa_causal(q, k, v, positions=None):
    """Plain causal RoPE attention, built from torch's own SDPA (queries are the last positions)."""
    nk, nq = k.shape[2], q.shape[2]
    positions = torch.arange(nk) if positions is None else positions
    qr, kr = apply_rope(q, positions[..., nk - nq:]), apply_rope(k, positions)
    mask = torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq)
    return F.scaled_dot_product_attention(qr, kr, v, attn_mask=mask)


@pytest.mark.parametrize("group_size,window", [(2, 4), (3, 5), (4, 1), (5, 16), (1, 3)])
def test_matches_per_query_loop(implementation, group_size, window):
    q, k, v = qkv(q_len=13)
    out = self_extend_attention(q, k, v, group_size, window, implementation=implementation)
    expected, _ = self_extend_loop(q, k, v, group_size, window)
    assert (out.double() - expected).abs().max() < 1e-5


def test_weights_match_per_query_loop():
    q, k, v = qkv(q_len=10)
    _, weights = self_extend_attention(q, k, v, 2, 4, return_weights=True)
    _, expected = self_extend_loop(q, k, v, 2, 4)
    assert weights.shape == (2, 2, 10, 10)
    assert (weights.double() - expected).abs().max() < 1e-6
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 10))


def test_position_offsets_and_per_batch_positions(implementation):
    q, k, v = qkv(batch=2, q_len=11)
    positions = torch.stack([torch.arange(11) + 5, torch.arange(11) * 2 + 1000])
    out = self_extend_attention(q, k, v, 3, 4, positions=positions, implementation=implementation)
    expected, _ = self_extend_loop(q, k, v, 3, 4, positions=positions)
    assert (out.double() - expected).abs().max() < 1e-5


def test_large_positions(implementation):
    q, k, v = qkv(batch=1, q_len=9, head_dim=16)
    positions = torch.arange(9) + 100_000
    out = self_extend_attention(q, k, v, 4, 3, positions=positions, implementation=implementation)
    expected, _ = self_extend_loop(q, k, v, 4, 3, positions=positions)
    assert (out.double() - expected).abs().max() < 1e-4


@pytest.mark.parametrize("seq_len,window", [(6, 6), (5, 8), (1, 1)])
def test_sequence_within_window_equals_plain_causal(implementation, seq_len, window):
    q, k, v = qkv(q_len=seq_len)
    out = self_extend_attention(q, k, v, 4, window, implementation=implementation)
    assert torch.allclose(out, sdpa_causal(q, k, v), atol=1e-5)


def test_group_size_one_equals_plain_causal(implementation):
    q, k, v = qkv(q_len=40)
    positions = torch.arange(40) + 17
    out = self_extend_attention(q, k, v, 1, 3, positions=positions, implementation=implementation)
    assert torch.allclose(out, sdpa_causal(q, k, v, positions), atol=1e-5)


def test_longer_sequence_differs_from_plain(implementation):
    # The method must actually do something once i - j >= w and g > 1.
    q, k, v = qkv(q_len=24)
    out = self_extend_attention(q, k, v, 4, 4, implementation=implementation)
    assert (out - sdpa_causal(q, k, v)).abs().max() > 1e-3


@pytest.mark.parametrize("chunk", [1, 3])
def test_decoding_reproduces_prefill_rows(implementation, chunk):
    q, k, v = qkv(q_len=20)
    full = self_extend_attention(q, k, v, 3, 5, implementation=implementation)
    rows = []
    for end in range(chunk, 21, chunk):
        start = max(0, end - chunk)
        rows.append(
            self_extend_attention(q[:, :, start:end], k[:, :, :end], v[:, :, :end], 3, 5, implementation=implementation)
        )
    decoded = torch.cat(rows, dim=2)
    assert decoded.shape[2] == 18 if chunk == 3 else 20
    assert torch.allclose(decoded, full[:, :, : decoded.shape[2]], atol=1e-5)


def test_grouped_query_attention_equals_repeated_kv(implementation):
    q, k, v = qkv(heads=6, kv_heads=2, q_len=14)
    out = self_extend_attention(q, k, v, 2, 4, implementation=implementation)
    k_rep, v_rep = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
    assert torch.allclose(out, self_extend_attention(q, k_rep, v_rep, 2, 4, implementation=implementation), atol=1e-6)
    expected, _ = self_extend_loop(q, k, v, 2, 4)
    assert (out.double() - expected).abs().max() < 1e-5


def test_batch_rows_are_independent(implementation):
    q, k, v = qkv(batch=3, q_len=15)
    out = self_extend_attention(q, k, v, 2, 4, implementation=implementation)
    for row in range(3):
        alone = self_extend_attention(q[row : row + 1], k[row : row + 1], v[row : row + 1], 2, 4, implementation=implementation)
        assert torch.allclose(out[row : row + 1], alone, atol=1e-6)


def test_causality_future_keys_do_not_matter(implementation):
    q, k, v = qkv(q_len=16)
    out = self_extend_attention(q, k, v, 2, 4, implementation=implementation)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 10:] = torch.randn_like(k2[:, :, 10:]) * 10
    v2[:, :, 10:] = torch.randn_like(v2[:, :, 10:]) * 10
    out2 = self_extend_attention(q, k2, v2, 2, 4, implementation=implementation)
    assert torch.allclose(out[:, :, :10], out2[:, :, :10], atol=1e-6)
    assert not torch.allclose(out[:, :, 10:], out2[:, :, 10:])


@pytest.mark.parametrize("dtype,tolerance", [(torch.float16, 5e-3), (torch.bfloat16, 4e-2)])
def test_half_precision_close_to_float32(implementation, dtype, tolerance):
    q, k, v = qkv(q_len=30, head_dim=16)
    out = self_extend_attention(q.to(dtype), k.to(dtype), v.to(dtype), 4, 6, implementation=implementation)
    assert out.dtype == dtype
    reference = self_extend_attention(q, k, v, 4, 6, implementation=implementation)
    assert (out.float() - reference).abs().max() < tolerance


def test_custom_scale(implementation):
    q, k, v = qkv(q_len=9)
    out = self_extend_attention(q, k, v, 2, 3, scale=0.1, implementation=implementation)
    expected, _ = self_extend_loop(q, k, v, 2, 3, scale=0.1)
    assert (out.double() - expected).abs().max() < 1e-5


def test_autograd_matches_finite_differences():
    q, k, v = (t.double().requires_grad_() for t in qkv(batch=1, heads=1, q_len=7, head_dim=4))
    assert torch.autograd.gradcheck(lambda a, b, c: self_extend_attention(a, b, c, 2, 3), (q, k, v))


def test_gradients_flow(implementation):
    q, k, v = (t.requires_grad_() for t in qkv(q_len=12))
    self_extend_attention(q, k, v, 2, 4, implementation=implementation).sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


GOOD = dict(q=torch.randn(1, 2, 4, 8), k=torch.randn(1, 2, 4, 8), v=torch.randn(1, 2, 4, 8))


@pytest.mark.parametrize(
    "change,parameter",
    [
        (dict(group_size=0), "group_size"),
        (dict(group_size=1.5), "group_size"),
        (dict(group_size=True), "group_size"),
        (dict(window=0), "window"),
        (dict(window=-3), "window"),
        (dict(q=torch.randn(1, 2, 4, 7), k=torch.randn(1, 2, 4, 7), v=torch.randn(1, 2, 4, 7)), "head_dim"),
        (dict(q=torch.randn(1, 2, 5, 8)), "q_len"),
        (dict(q=torch.randn(2, 2, 4, 8)), "batch"),
        (dict(q=torch.randn(1, 2, 4, 6)), "head_dim"),
        (dict(q=torch.randn(1, 3, 4, 8)), "heads"),
        (dict(q=torch.randint(0, 5, (1, 2, 4, 8))), "floating-point"),
        (dict(q=torch.randn(2, 4, 8)), "4 dimensions"),
        (dict(v=torch.randn(1, 2, 3, 8)), "same heads and length"),
        (dict(v=torch.randn(1, 2, 4, 8).double()), "dtype"),
        (dict(positions=torch.arange(5)), "positions"),
        (dict(positions=torch.arange(4.0)), "positions"),
        (dict(positions=torch.zeros(3, 4, dtype=torch.long)), "positions"),
        (dict(scale=0.0), "scale"),
        (dict(implementation="flash"), "implementation"),
    ],
)
def test_bad_inputs_raise_value_error(change, parameter):
    args = dict(GOOD, group_size=2, window=2)
    args.update(change)
    q, k, v = args.pop("q"), args.pop("k"), args.pop("v")
    with pytest.raises(ValueError, match=parameter):
        self_extend_attention(q, k, v, **args)
