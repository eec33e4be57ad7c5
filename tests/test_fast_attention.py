"""The fast exact kernel (selfextend.fast_attention) against a slow per-query loop and the reference.

Every scenario runs on the three routes of the fast kernel:
  banded    default causal mask, consecutive positions: the few-big-calls schedule
  segments  the same inputs with the causal mask passed explicitly: the general per-chunk schedule
  manual    the fused kernel switched off: per-chunk logits and one softmax (softcap / autograd path)
"""
import math

import pytest
import torch

from selfextend import fast_attention, merged_attention, self_extend_attention
from selfextend.fast_attention import (GROUPED, MIXED, NEIGHBOR, Piece, Segment, band_plan, fast_merged_attention,
                                       plan)

ROUTES = ["banded", "segments", "manual"]


def merged_loop(qn, kn, qg, kg, v, query_pos, key_pos, window, scale, attn_mask=None, softcap=None):
    """The kernel's contract written out, one query and one key at a time, in float64.

    Grouped q/k where query_position - key_position >= window, else neighbor q/k; masked keys drop
    out; a row with no key left gets the mean of v over all keys (uniform weights, as the reference).
    """
    b, hq, nq, _ = qn.shape
    hkv, nk = kn.shape[1], kn.shape[2]
    if attn_mask is None:
        attn_mask = torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq)
    mask = torch.broadcast_to(attn_mask, (b, hq, nq, nk))
    out = torch.zeros(b, hq, nq, v.shape[-1], dtype=torch.float64)
    for batch in range(b):
        qp = query_pos if query_pos.dim() == 1 else query_pos[min(batch, query_pos.shape[0] - 1)]
        kp = key_pos if key_pos.dim() == 1 else key_pos[min(batch, key_pos.shape[0] - 1)]
        for head in range(hq):
            kv_head = head // (hq // hkv)
            for row in range(nq):
                logits = {}
                for key in range(nk):
                    if not mask[batch, head, row, key]:
                        continue
                    if int(qp[row]) - int(kp[key]) >= window:
                        x = float(qg[batch, head, row].double() @ kg[batch, kv_head, key].double())
                    else:
                        x = float(qn[batch, head, row].double() @ kn[batch, kv_head, key].double())
                    x *= scale
                    logits[key] = x if softcap is None else softcap * math.tanh(x / softcap)
                if not logits:
                    out[batch, head, row] = v[batch, kv_head].double().mean(0)
                    continue
                top = max(logits.values())
                total = sum(math.exp(x - top) for x in logits.values())
                for key, x in logits.items():
                    out[batch, head, row] += math.exp(x - top) / total * v[batch, kv_head, key].double()
    return out


def make_inputs(b, hq, hkv, nq, nk, d, positions=None, dtype=torch.float32):
    """Random already-rotated tensors and positions (queries are the last nq keys)."""
    tensors = [torch.randn(b, h, n, d).to(dtype) for h, n in ((hq, nq), (hkv, nk), (hq, nq), (hkv, nk), (hkv, nk))]
    key_pos = torch.arange(nk) if positions is None else positions
    return (*tensors, key_pos[..., nk - nq :], key_pos)


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch):
    if request.param == "manual":
        monkeypatch.setattr(fast_attention, "_flash_with_lse", None)
    return request.param


def run_fast(args, window, route, attn_mask=None, **kwargs):
    nq, nk = args[0].shape[2], args[1].shape[2]
    if route == "segments" and attn_mask is None:
        attn_mask = torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq)
    return fast_merged_attention(*args, window, attn_mask=attn_mask, **kwargs)


@pytest.mark.parametrize(
    "b, hq, hkv, nq, nk, d, window, chunk",
    [
        (1, 1, 1, 12, 12, 4, 4, None),
        (2, 4, 2, 17, 17, 8, 5, 3),  # GQA, chunk not dividing the length
        (1, 2, 1, 1, 30, 8, 7, None),  # decode: one query against a cache
        (2, 2, 2, 3, 25, 4, 6, 2),  # a decode chunk of 3 queries
        (1, 3, 3, 20, 20, 6, 1, 7),  # window 1: only the diagonal is neighbor
        (1, 2, 2, 16, 16, 4, 16, None),  # window = length: plain causal attention
        (1, 2, 2, 16, 16, 4, 15, 4),  # the last key pair exactly at the window
    ],
)
def test_matches_loop(route, b, hq, hkv, nq, nk, d, window, chunk):
    args = make_inputs(b, hq, hkv, nq, nk, d)
    expected = merged_loop(*args, window, 0.4)
    got = run_fast(args, window, route, scale=0.4, query_chunk=chunk)
    assert got.dtype == torch.float32 and got.shape == (b, hq, nq, d)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_boundary_exactly_at_window(route):
    """Distance w - 1 is neighbor and distance w is grouped: make the two logits very different."""
    nk, window = 9, 4
    args = list(make_inputs(1, 1, 1, nk, nk, 4))
    args[2] = args[2] * 20  # grouped queries: large logits, so a misclassified pair shows at once
    expected = merged_loop(*args, window, 0.5)
    torch.testing.assert_close(run_fast(args, window, route, scale=0.5).double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk", [None, 37])
def test_long_sequence_many_blocks_matches_reference(route, chunk):
    args = make_inputs(1, 2, 1, 700, 700, 16)
    for window in (3, 129, 500):
        expected = merged_attention(*args, window, scale=0.25, implementation="reference")
        got = run_fast(args, window, route, scale=0.25, query_chunk=chunk)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("nq", [1, 3, 64])
def test_decode_against_long_cache_matches_reference(route, nq):
    args = make_inputs(2, 4, 1, nq, 3000, 8)
    expected = merged_attention(*args, 1000, scale=0.3, implementation="reference")
    torch.testing.assert_close(run_fast(args, 1000, route, scale=0.3), expected, atol=1e-5, rtol=0)


def padding_mask(nq, nk, left, right):
    """[b, 1, nq, nk]: causal, with ``left[i]`` padded keys at the start and ``right[i]`` at the end."""
    causal = torch.ones(nq, nk, dtype=torch.bool).tril(nk - nq)
    keep = torch.ones(len(left), nk, dtype=torch.bool)
    for i, (lo, hi) in enumerate(zip(left, right)):
        keep[i, :lo] = False
        keep[i, nk - hi :] = False
    return causal[None, None] & keep[:, None, None, :]


@pytest.mark.parametrize("softcap", [None, 2.5])
def test_padding_masks_and_fully_masked_rows(route, softcap):
    nq = nk = 14
    args = make_inputs(3, 4, 2, nq, nk, 8)
    mask = padding_mask(nq, nk, left=[0, 5, 0], right=[0, 0, 4])  # left padding: rows 0..4 of batch 1 see nothing
    mask[2, :, 6] = False  # and one more fully masked row
    expected = merged_loop(*args, 4, 0.35, attn_mask=mask, softcap=softcap)
    got = fast_merged_attention(*args, 4, scale=0.35, attn_mask=mask, softcap=softcap, query_chunk=4)
    assert not torch.isnan(got).any()
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    reference = merged_attention(*args, 4, scale=0.35, attn_mask=mask, softcap=softcap, implementation="reference")
    torch.testing.assert_close(got, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", ["2d", "rows broadcast", "per head"])
def test_mask_shapes(route, shape):
    nq, nk = 6, 11
    args = make_inputs(2, 2, 2, nq, nk, 4)
    base = torch.rand(2, 2, nq, nk) > 0.3
    mask = {"2d": base[0, 0], "rows broadcast": base[:, :1, :1, :], "per head": base}[shape]
    expected = merged_loop(*args, 3, 0.5, attn_mask=mask)
    got = fast_merged_attention(*args, 3, scale=0.5, attn_mask=mask, query_chunk=4)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_softcap(route):
    args = make_inputs(2, 2, 1, 15, 15, 8)
    args = [a * 3 if a.is_floating_point() else a for a in args]  # logits large enough for tanh to matter
    expected = merged_loop(*args, 5, 0.5, softcap=4.0)
    torch.testing.assert_close(run_fast(args, 5, route, scale=0.5, softcap=4.0).double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "positions",
    [
        torch.stack([torch.arange(20), torch.arange(20) + 37]),  # per-row offsets: still consecutive
        torch.stack([torch.arange(20) * 2, torch.arange(20).flip(0)]),  # not consecutive
        torch.cat([torch.ones(1, 6, dtype=torch.long), torch.arange(14)[None]], dim=1),  # left-padding style
    ],
)
def test_positions_per_batch_row(route, positions):
    b = positions.shape[0]
    args = make_inputs(b, 2, 2, 20, 20, 4, positions=positions)
    expected = merged_loop(*args, 5, 0.5)
    torch.testing.assert_close(run_fast(args, 5, route, scale=0.5, query_chunk=6).double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(route, dtype):
    args = make_inputs(1, 2, 2, 300, 300, 16, dtype=dtype)
    got = run_fast(args, 40, route, scale=0.25)
    assert got.dtype == dtype
    reference = merged_attention(*args, 40, scale=0.25, implementation="reference")
    if dtype == torch.float64:
        torch.testing.assert_close(got, reference, atol=1e-12, rtol=0)
    else:  # both compute in float32 from the same half inputs: at most one rounding step apart
        tolerance = 1e-3 if dtype == torch.float16 else 8e-3
        torch.testing.assert_close(got.float(), reference.float(), atol=tolerance, rtol=0)
        full = merged_attention(*[a.float() if a.is_floating_point() else a for a in args], 40, scale=0.25,
                                implementation="reference")
        torch.testing.assert_close(got.float(), full, atol=tolerance, rtol=0)


def test_gradients_match_reference():
    args = [a.requires_grad_(True) if a.is_floating_point() else a for a in make_inputs(2, 4, 2, 40, 40, 8)]
    mask = padding_mask(40, 40, left=[0, 3], right=[2, 0])
    for attn_mask, softcap in ((None, None), (mask, 3.0)):
        ref = merged_attention(*args, 9, scale=0.3, attn_mask=attn_mask, softcap=softcap, implementation="reference")
        fast = fast_merged_attention(*args, 9, scale=0.3, attn_mask=attn_mask, softcap=softcap, query_chunk=16)
        weight = torch.randn_like(ref)
        expected = torch.autograd.grad((ref * weight).sum(), args[:5])
        got = torch.autograd.grad((fast * weight).sum(), args[:5])
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, atol=1e-5, rtol=0)


def test_each_route_is_taken(monkeypatch):
    """The route fixture really exercises three different code paths."""
    args = make_inputs(1, 2, 2, 20, 20, 4)
    calls = []
    for name in ("_banded", "_fused_chunk", "_manual_chunk"):
        original = getattr(fast_attention, name)
        monkeypatch.setattr(fast_attention, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    run_fast(args, 5, "banded", scale=0.5)
    run_fast(args, 5, "segments", scale=0.5)
    fast_merged_attention(*args, 5, scale=0.5, softcap=10.0)
    assert calls[0] == "_banded" and set(calls[1:]) == {"_fused_chunk", "_manual_chunk"}
    assert calls.index("_manual_chunk") > calls.index("_fused_chunk")


def test_plan_hand_checked():
    """10 tokens, w = 4, chunks of 5: rows 5..9 have grouped keys 0-1, mixed 2-5, neighbor (partly future) 6-9."""
    schedule = plan(torch.arange(10), torch.arange(10), 4, query_chunk=5)
    assert schedule[1] == (5, 10, [Segment(0, 2, GROUPED, False), Segment(2, 6, MIXED, False),
                                   Segment(6, 10, NEIGHBOR, True)])
    assert schedule[0] == (0, 5, [Segment(0, 1, MIXED, False), Segment(1, 5, NEIGHBOR, True)])


def test_band_plan_covers_every_pair_once():
    """The banded schedule's pieces tile exactly the causal triangle, each pair with the right q/k."""
    for nq, nk, window, rows in ((30, 30, 7, 4), (30, 30, 7, 100), (1, 40, 9, 8), (5, 40, 9, 3), (12, 12, 20, 5),
                                 (20, 26, 9, 6)):
        count = torch.zeros(nq, nk, dtype=torch.long)
        for block in band_plan(nq, nk, window, rows):
            assert len({(p.r0, p.r1) for p in block}) == 1  # every piece of a block covers the block's rows
            for piece in block:
                for r in range(piece.r0, piece.r1):
                    t = nk - nq + r
                    for j in range(piece.k0, piece.k1):
                        taken = {
                            "full": True,
                            "causal": j - piece.k0 <= r - piece.r0,  # a square, top-left aligned
                            "band": t - window < j <= t,
                        }[piece.shape]
                        if taken:
                            assert (t - j >= window) == (piece.kind == GROUPED), (piece, r, j)
                            count[r, j] += 1
        assert torch.equal(count, torch.ones(nq, nk, dtype=torch.long).tril(nk - nq)), (nq, nk, window, rows)


def test_band_plan_hand_checked():
    """10 tokens, w = 4, blocks of 3 rows: head rows 0..3 are plain causal; then grouped + band per block."""
    blocks = band_plan(10, 10, 4, block_rows=3)
    assert blocks[0] == [Piece(0, 4, 0, 4, NEIGHBOR, "causal")]
    assert blocks[1] == [Piece(4, 7, 0, 3, GROUPED, "causal"), Piece(4, 7, 1, 7, NEIGHBOR, "band")]
    assert blocks[2] == [Piece(7, 10, 3, 6, GROUPED, "causal"), Piece(7, 10, 0, 3, GROUPED, "full"),
                         Piece(7, 10, 4, 10, NEIGHBOR, "band")]


@pytest.mark.parametrize("layout", ["contiguous", "heads after rows"])
def test_banded_batched_runs_match_loop(layout):
    """Band runs batched on strided views: several batch rows, GQA, a partial last run, model-style strides."""
    b, hq, hkv, n, d, window = 2, 4, 2, 90, 8, 24  # band runs of 3 rows; 90 - 24 rows is not a multiple of 4
    args = list(make_inputs(b, hq, hkv, n, n, d))
    if layout == "heads after rows":  # [b, n, h, d] storage seen as [b, h, n, d], as in transformers' attention
        args[:5] = [t.transpose(1, 2).contiguous().transpose(1, 2) for t in args[:5]]
    expected = merged_loop(*args, window, 0.4)
    got = fast_merged_attention(*args, window, scale=0.4, query_chunk=32)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_grouped_queries_as_a_function():
    """q_grouped given as rows(start, stop) equals q_grouped given whole, on every schedule."""
    args = list(make_inputs(2, 2, 1, 70, 70, 8))
    whole = args[2]
    calls = []

    def rows(start, stop):
        calls.append((start, stop))
        return whole[:, :, start:stop]

    for attn_mask in (None, torch.ones(70, 70, dtype=torch.bool).tril()):
        expected = fast_merged_attention(*args, 20, scale=0.3, attn_mask=attn_mask)
        args[2] = rows
        got = fast_merged_attention(*args, 20, scale=0.3, attn_mask=attn_mask, query_chunk=16)
        args[2] = whole
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert calls[:3] == [(20, 36), (36, 52), (52, 68)]  # the banded schedule: one block of rows at a time
    assert calls[-1] == (0, 70)  # the general schedule takes them whole
    with pytest.raises(ValueError, match="grouped queries"):
        fast_merged_attention(rows, *args[1:], 20, scale=0.3)


def test_dispatch_and_bad_input():
    q, k, v = torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8)
    with pytest.raises(ValueError, match="return_weights"):
        self_extend_attention(q, k, v, 2, 8, return_weights=True, implementation="fast")
    out, weights = self_extend_attention(q, k, v, 2, 8, return_weights=True, implementation="auto")
    assert weights.shape == (1, 2, 40, 40)
    torch.testing.assert_close(self_extend_attention(q, k, v, 2, 8, implementation="fast"), out, atol=1e-5, rtol=0)
    args = make_inputs(1, 1, 1, 5, 5, 4)
    with pytest.raises(ValueError, match="query_chunk"):
        fast_merged_attention(*args, 2, scale=1.0, query_chunk=0)
    with pytest.raises(ValueError, match="attn_mask"):
        fast_merged_attention(*args, 2, scale=1.0, attn_mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="softcap"):
        fast_merged_attention(*args, 2, scale=1.0, softcap=-1.0)
    with pytest.raises(ValueError, match="window"):
        fast_merged_attention(*args, 0, scale=1.0)


def test_auto_uses_fast_path_for_long_inputs(monkeypatch):
    import selfextend.attention as attention

    seen = []
    original = attention.fast_merged_attention
    monkeypatch.setattr(attention, "fast_merged_attention", lambda *a, **k: seen.append(1) or original(*a, **k))
    q, k, v = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 2000, 8), torch.randn(1, 1, 2000, 8)
    self_extend_attention(q[:, :, :, :], k, v, 4, 64)  # decoding against a long cache
    assert seen == [1]
    small = torch.randn(1, 1, 16, 8)
    self_extend_attention(small, small, small, 4, 4)
    assert seen == [1]


def test_benchmark_csv_round_trip_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from selfextend.viz import plot_attention_benchmark, plot_attention_schedule, read_benchmark_csv
    from selfextend.viz.benchmark import segment_picture

    path = tmp_path / "bench.csv"
    path.write_text(
        "case,length,method,time_ms,time_vs_sdpa,peak_mib,memory_vs_sdpa,note\n"
        "prefill,1024,sdpa,10,1,20,1,\n"
        "prefill,1024,naive,,,,,skipped: needs ~9 GiB\n"
        "prefill,1024,fast,12,1.2,25,1.25,\n"
        "decode,4096,fast,1.5,1.1,,,\n"
    )
    rows = read_benchmark_csv(path)
    assert rows[1]["time_ms"] is None and rows[2]["time_vs_sdpa"] == 1.2 and rows[0]["length"] == 1024
    for fig in (plot_attention_benchmark(rows), plot_attention_schedule(12, 12, 4, query_chunk=4)):
        assert isinstance(fig, Figure)
        plt.close(fig)
    # 6 tokens, w = 2, chunks of 3 rows. Codes: 0 not computed, 1 grouped, 2 neighbor, 3 mixed, 4 masked.
    codes = segment_picture(6, 6, 2, 3)
    assert codes[3:, 0].tolist() == [1, 1, 1] and codes[3:, 1].tolist() == [1, 1, 1]  # 3 - 1 >= 2: grouped
    assert codes[0, 0] == 3  # rows 0..2 against key 0: distances 0..2 straddle w = 2, mixed
    assert codes[3:, 4].tolist() == [4, 2, 2]  # neighbor only (5 - 4 < 2), row 3 masked (future)
    assert codes[0, 1:3].tolist() == [4, 4] and codes[0, 3] == 0  # first chunk: computed-masked, not computed
