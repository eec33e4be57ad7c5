"""Sliding-window attention (Mistral's window): the kernel against a naive masked softmax, its memory,
and the ``SlidingWindow`` position map.

The naive reference builds the explicit [nq, nk] mask  0 <= i - j < W  and takes one float64 softmax.
"""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from selfextend import fast_attention, sliding_window_attention
from selfextend.fast_attention import NEIGHBOR, Piece, band_rows_for, sliding_window_plan
from selfextend.methods import LMInfinite, SlidingWindow, attention, position_map
from selfextend.rope import inverse_frequencies, rotate_pairs


def naive_sliding(q, k, v, window, scale):
    """Queries the last nq of nk positions; query i attends key j iff 0 <= i - j < window (float64)."""
    nq, nk = q.shape[2], k.shape[2]
    rep = q.shape[1] // k.shape[1]
    i = torch.arange(nk - nq, nk)[:, None]
    j = torch.arange(nk)[None, :]
    allowed = (i - j >= 0) & (i - j < window)  # [nq, nk]
    k, v = (x.double().repeat_interleave(rep, dim=1) for x in (k, v))
    logits = (q.double() @ k.transpose(-1, -2)) * scale
    return torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1) @ v


def inputs(b, hq, hkv, nq, nk, d=16, dtype=torch.float32):
    return torch.randn(b, hq, nq, d, dtype=dtype), torch.randn(b, hkv, nk, d, dtype=dtype), \
        torch.randn(b, hkv, nk, d, dtype=dtype)


CASES = [  # (nq, nk, window, hq, hkv)
    (40, 40, 1, 2, 2),  # each row attends itself only
    (40, 40, 2, 4, 2),
    (97, 97, 8, 4, 1),  # band runs of 1 row; N not a multiple of anything
    (130, 130, 33, 2, 2),  # band runs of 4 rows with a partial last run
    (300, 300, 256, 4, 2),  # band runs of 32 rows
    (60, 90, 10, 2, 1),  # prefill with a cache: nq < nk, the head rows' prefix is all cache
    (5, 90, 40, 2, 2),  # a few queries, all past the window
    (20, 30, 25, 2, 2),  # nq < nk, head rows with the cached keys as a full rectangle
    (1, 50, 7, 4, 2),  # decoding
    (1, 5, 7, 4, 2),  # decoding, window longer than the cache
    (1, 1, 1, 2, 2),
    (50, 50, 50, 2, 2),  # W = N: plain causal attention
    (50, 50, 500, 4, 2),  # W > N
]


@pytest.mark.parametrize("grad", [False, True], ids=["fused", "chunked"])
@pytest.mark.parametrize("nq, nk, window, hq, hkv", CASES)
def test_matches_naive(nq, nk, window, hq, hkv, grad):
    q, k, v = inputs(2, hq, hkv, nq, nk)
    with torch.set_grad_enabled(grad):
        out = sliding_window_attention(q.requires_grad_(grad), k, v, window, scale=0.3)
    assert out.shape == (2, hq, nq, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), naive_sliding(q, k, v, window, 0.3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("nq, nk, window", [(700, 700, 45), (700, 900, 130), (650, 650, 300)])
def test_many_blocks_match_naive(monkeypatch, nq, nk, window):
    """Blocks of 256 rows (a partial last one) on the fused path, and the chunked fallback."""
    monkeypatch.setattr(fast_attention, "BLOCK_ROWS", 256)
    q, k, v = inputs(1, 4, 2, nq, nk)
    expected = naive_sliding(q, k, v, window, 0.25)
    with torch.no_grad():
        torch.testing.assert_close(sliding_window_attention(q, k, v, window, scale=0.25).double(), expected,
                                   atol=1e-5, rtol=0)
    monkeypatch.setattr(fast_attention, "_flash_with_lse", None)  # as where the fused kernel is missing
    with torch.no_grad():
        torch.testing.assert_close(sliding_window_attention(q, k, v, window, scale=0.25).double(), expected,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("window", [64, 65, 1000])
def test_window_at_least_n_is_causal_attention(window):
    q, k, v = inputs(2, 4, 4, 64, 64)
    with torch.no_grad():
        out = sliding_window_attention(q, k, v, window, scale=0.25)
        sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.25)
    torch.testing.assert_close(out, sdpa, atol=1e-5, rtol=0)


def test_model_style_strides_and_dtypes():
    """q [b, n, h, d] storage seen as [b, h, n, d] (as transformers passes it); bfloat16 and float64."""
    q, k, v = inputs(2, 4, 2, 90, 90)
    strided = [t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v)]
    expected = naive_sliding(q, k, v, 24, 0.3)
    with torch.no_grad():
        torch.testing.assert_close(sliding_window_attention(*strided, 24, scale=0.3).double(), expected,
                                   atol=1e-5, rtol=0)
        half = sliding_window_attention(*(t.bfloat16() for t in (q, k, v)), 24, scale=0.3)
        double = sliding_window_attention(*(t.double() for t in (q, k, v)), 24, scale=0.3)
    assert half.dtype == torch.bfloat16 and double.dtype == torch.float64
    torch.testing.assert_close(half.double(), expected, atol=3e-2, rtol=0)
    torch.testing.assert_close(double, expected, atol=1e-12, rtol=0)


def test_gradients_match_naive():
    q, k, v = (t.requires_grad_() for t in inputs(1, 2, 1, 70, 70))
    weight = torch.randn(1, 2, 70, 16)
    got = torch.autograd.grad((sliding_window_attention(q, k, v, 9, scale=0.3) * weight).sum(), (q, k, v))
    expected = torch.autograd.grad((naive_sliding(q, k, v, 9, 0.3) * weight.double()).sum(), (q, k, v))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.double(), e.double(), atol=1e-5, rtol=0)


def test_plan_hand_checked_and_tiles_the_window():
    """10 tokens, w = 4, blocks of 3: head rows 0..3 causal, then one band per block (band_plan's neighbors)."""
    assert sliding_window_plan(10, 10, 4, block_rows=3) == [
        [Piece(0, 4, 0, 4, NEIGHBOR, "causal")],
        [Piece(4, 7, 1, 7, NEIGHBOR, "band")],
        [Piece(7, 10, 4, 10, NEIGHBOR, "band")],
    ]
    for nq, nk, window, rows in ((30, 30, 7, 4), (1, 40, 9, 8), (5, 40, 9, 3), (12, 12, 20, 5), (20, 26, 9, 6)):
        count = torch.zeros(nq, nk, dtype=torch.long)
        for block in sliding_window_plan(nq, nk, window, rows):
            for p in block:
                for r in range(p.r0, p.r1):
                    t = nk - nq + r
                    for j in range(p.k0, p.k1):
                        if {"full": True, "causal": j - p.k0 <= r - p.r0, "band": t - window < j <= t}[p.shape]:
                            count[r, j] += 1
        i, j = torch.arange(nk - nq, nk)[:, None], torch.arange(nk)[None, :]
        assert torch.equal(count, ((i - j >= 0) & (i - j < window)).long()), (nq, nk, window, rows)


def _largest_allocation(fn) -> int:
    """The largest block of CPU memory one op allocated while ``fn`` ran (torch.profiler)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(event.self_cpu_memory_usage for event in prof.events())


def test_no_n_by_n_tensor(monkeypatch):
    """N = 8192, W = 64: no op allocates anything near N x N, and every fused call sees <= W + 7 keys."""
    n, window = 8192, 64
    q, k, v = inputs(1, 2, 1, n, n)
    seen = []
    flash = fast_attention._flash_with_lse

    def recording(q_, k_, v_, **kwargs):
        mask = kwargs.get("attn_mask")
        seen.append((k_.shape[-2], 0 if mask is None else mask.numel()))
        return flash(q_, k_, v_, **kwargs)

    monkeypatch.setattr(fast_attention, "_flash_with_lse", recording)
    with torch.no_grad():
        largest = _largest_allocation(lambda: sliding_window_attention(q, k, v, window, scale=0.25))
    band_rows = band_rows_for(window)
    assert seen and max(keys for keys, _ in seen) <= window + band_rows - 1
    assert max(size for _, size in seen) <= band_rows * (window + band_rows - 1)
    assert largest < n * n // 8  # an eighth of one bool [n, n] mask (the output [1, 2, n, 16] is n * n / 64)
    # the measurement can fail: it sees an [n, n] bool mask
    assert _largest_allocation(lambda: torch.ones(n, n, dtype=torch.bool).tril()) >= n * n


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_bad_window_raises(window):
    with pytest.raises(ValueError, match="window must be a positive integer"):
        sliding_window_attention(*inputs(1, 1, 1, 4, 4), window, scale=1.0)


def test_bad_shapes_raise():
    q, k, v = inputs(1, 3, 2, 4, 4)
    with pytest.raises(ValueError, match="multiple"):
        sliding_window_attention(q, k, v, 2, scale=1.0)
    q, k, v = inputs(1, 2, 2, 5, 4)
    with pytest.raises(ValueError, match="at most nk"):
        sliding_window_attention(q, k, v, 2, scale=1.0)
    with pytest.raises(ValueError, match="v must have shape"):
        sliding_window_attention(q[:, :, :4], k, v[:, :, :3], 2, scale=1.0)


# ----------------------------------------------------------------------------------------------
# The position map


def test_position_map_is_lm_infinite_without_global_tokens():
    """SlidingWindow(W) keeps exactly LM-Infinite(L, n_local=W, n_global=0)'s keys, at the same distances."""
    for window, pretrained in ((1, 1), (4, 4), (4, 16), (9, 40)):
        values, regions, attended = position_map(SlidingWindow(window), 30)
        lm_values, lm_regions, lm_attended = position_map(LMInfinite(pretrained, window, 0), 30)
        assert torch.equal(attended, lm_attended)
        assert torch.equal(values[attended], lm_values[attended])
        i, j = torch.arange(30)[:, None], torch.arange(30)[None, :]
        assert torch.equal(attended, (i - j >= 0) & (i - j < window))
        assert torch.equal(values[attended], (i - j).expand(30, 30)[attended].double())


@pytest.mark.parametrize("window", [1, 5, 40])
def test_method_attention_equals_the_kernel(window, implementation):
    """The generic method path (RoPE at the ordinary positions, a mask) equals the kernel on rotated q, k."""
    q, k, v = inputs(1, 4, 2, 33, 33, d=8)
    out = attention(SlidingWindow(window), q, k, v, implementation=implementation)
    theta, positions = inverse_frequencies(8), torch.arange(33)
    rotated = rotate_pairs(q, positions, theta), rotate_pairs(k, positions, theta)
    with torch.no_grad():
        kernel = sliding_window_attention(*rotated, v, window, scale=8 ** -0.5)
    torch.testing.assert_close(out, kernel, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.double(), naive_sliding(*rotated, v, window, 8 ** -0.5), atol=1e-5, rtol=0)


def test_method_label_and_bad_window():
    assert SlidingWindow(4096).label == "Sliding window W=4096"
    assert SlidingWindow(8).largest_relative_position(5) == 4.0
    assert SlidingWindow(8).largest_relative_position(50) == 7.0
    with pytest.raises(ValueError, match="window"):
        SlidingWindow(0)
