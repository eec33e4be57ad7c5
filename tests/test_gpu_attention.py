"""The GPU route (selfextend.gpu_attention) without a GPU: its schedule, its merge, and its dispatch.

CI has no GPU. The schedule and the log-sum-exp merge do not depend on the device, so they are checked
here with ``math_attend`` standing in for torch's fused CUDA kernels, against the per-query loop of
tests/test_fast_attention.py. ``benchmarks/bench_gpu.py`` checks the real kernels where a GPU exists.
"""
import pytest
import torch

from selfextend import attention, merged_attention
from selfextend.fast_attention import GROUPED
from selfextend.gpu_attention import gpu_merged_attention, gpu_plan, math_attend

from test_fast_attention import make_inputs, merged_loop


@pytest.mark.parametrize("nq, nk, window, chunk", [(30, 30, 7, 4), (30, 30, 7, 100), (5, 40, 9, 3),
                                                   (12, 12, 20, 5), (20, 26, 9, 6), (40, 40, 2, 8)])
def test_plan_covers_every_pair_once(nq, nk, window, chunk):
    count = torch.zeros(nq, nk, dtype=torch.long)
    for piece in gpu_plan(nq, nk, window, chunk):
        assert piece.shape in ("full", "causal", "reversed")
        if piece.shape != "full":
            assert piece.r1 - piece.r0 == piece.k1 - piece.k0  # squares: any causal alignment will do
        for r in range(piece.r0, piece.r1):
            t = nk - nq + r
            for j in range(piece.k0, piece.k1):
                offset, row = j - piece.k0, r - piece.r0
                if {"full": True, "causal": offset <= row, "reversed": offset >= row}[piece.shape]:
                    assert (t - j >= window) == (piece.kind == GROUPED), (piece, r, j)
                    count[r, j] += 1
    assert torch.equal(count, torch.ones(nq, nk, dtype=torch.long).tril(nk - nq))


@pytest.mark.parametrize("b, hq, hkv, nq, nk, window, chunk", [(1, 2, 2, 24, 24, 6, 4), (2, 4, 2, 19, 19, 5, 3),
                                                                (1, 2, 1, 7, 30, 8, 100), (1, 1, 1, 16, 16, 16, 5)])
def test_merge_matches_loop(b, hq, hkv, nq, nk, window, chunk):
    args = make_inputs(b, hq, hkv, nq, nk, 8)
    expected = merged_loop(*args, window, 0.4)
    got = gpu_merged_attention(*args[:5], window, scale=0.4, chunk_rows=chunk, attend=math_attend)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_longer_input_matches_reference():
    args = make_inputs(1, 2, 2, 300, 300, 16)
    expected = merged_attention(*args, 64, scale=0.25, implementation="reference")
    got = gpu_merged_attention(*args[:5], 64, scale=0.25, chunk_rows=40, attend=math_attend)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_cpu_inputs_never_take_the_gpu_route(monkeypatch):
    monkeypatch.setattr(attention, "gpu_merged_attention", lambda *a, **k: pytest.fail("GPU route on CPU"))
    args = make_inputs(1, 2, 2, 64, 64, 8)
    merged_attention(*args, 16, scale=0.3, implementation="fast")


def test_bad_window():
    with pytest.raises(ValueError, match="window"):
        gpu_plan(8, 8, 1)
    with pytest.raises(ValueError, match="chunk_rows"):
        gpu_plan(8, 8, 4, chunk_rows=0)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")


@cuda
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_cuda_kernels_match_math(dtype, tolerance):
    from selfextend.gpu_attention import cuda_attend

    q, k, v = (torch.randn(2, 4, 200, 64, device="cuda", dtype=dtype) for _ in range(3))
    for causal in (False, True):
        out, lse = cuda_attend(q, k, v, 0.125, causal)
        expected_out, expected_lse = math_attend(q, k, v, 0.125, causal)
        torch.testing.assert_close(out.float(), expected_out.float(), atol=tolerance, rtol=0)
        torch.testing.assert_close(lse, expected_lse, atol=tolerance, rtol=0)


@cuda
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("nq, hkv", [(1500, 4), (700, 2)])
def test_cuda_route_matches_reference(monkeypatch, dtype, tolerance, nq, hkv):
    """self_extend_attention on CUDA takes the GPU route and equals the float32 reference."""
    taken = []
    original = attention.gpu_merged_attention
    monkeypatch.setattr(attention, "gpu_merged_attention", lambda *a, **k: taken.append(1) or original(*a, **k))
    nk = 1500
    q = torch.randn(1, 4, nq, 64, device="cuda", dtype=dtype)
    k, v = (torch.randn(1, hkv, nk, 64, device="cuda", dtype=dtype) for _ in range(2))
    from selfextend import self_extend_attention

    with torch.no_grad():
        got = self_extend_attention(q, k, v, 4, 256, implementation="fast")
        expected = self_extend_attention(q.float(), k.float(), v.float(), 4, 256, implementation="reference")
    assert taken == [1]
    torch.testing.assert_close(got.float(), expected, atol=tolerance, rtol=0)


def test_equal_band_chunks_run_as_one_batched_call():
    """60 tokens, w = 8: band chunks of 7 rows; the 7 equal chunks' C and A pieces are one call each."""
    args = make_inputs(2, 2, 2, 60, 60, 8)
    calls = []

    def counting(q, k, v, scale, causal):
        calls.append(q.shape[0])
        return math_attend(q, k, v, scale, causal)

    got = gpu_merged_attention(*args[:5], 8, scale=0.3, attend=counting)
    expected = merged_attention(*args, 8, scale=0.3, implementation="reference")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # head causal; grouped causal; C and A: 7 chunks batched (x 2 batch rows) + the 3-row rest; B of the rest
    assert len(calls) == 7 and calls.count(14) == 2
