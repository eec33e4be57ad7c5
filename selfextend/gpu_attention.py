"""Exact SelfExtend attention on a GPU: torch's fused attention kernels and the log-sum-exp merge.

The same idea as ``fast_attention`` (every (query, key) pair uses exactly one logit, so the keys of a
row split into disjoint sets whose partial softmaxes merge exactly), cut into pieces that torch's
fused CUDA kernels take as they are: "full" rectangles and "causal" squares, plus "reversed" squares
(row r takes key r and later), which become causal squares when rows and keys are read backwards.
No piece needs a mask, so any fused kernel that returns its log-sum-exp will do:

    bfloat16 / float16   cuDNN's fused attention (``aten._scaled_dot_product_cudnn_attention``, what
                         SDPA itself runs on Hopper), else FlashAttention-2 (``..._flash_attention``)
    float32              memory-efficient attention (``aten._scaled_dot_product_efficient_attention``)

Every causal piece is a square, so it does not matter whether a kernel aligns ``is_causal`` top-left or
bottom-right. The schedule (``gpu_plan``), for query row r at key index t = nk - nq + r:

    head rows (t < w)   neighbor only: a causal square (and a full rectangle when nq < nk)
    grouped             rows with t >= w take keys 0 .. t - w: one causal square plus a full rectangle
    neighbor band       rows t >= w in chunks of R <= w - 1 rows starting at t0:
                          C  keys t0 .. t0+R-1          causal   (row r: j <= t0 + r)
                          B  keys t0-w+1+R .. t0-1      full
                          A  keys t0-w+1 .. t0-w+R      reversed (row r: j >= t0 - w + 1 + r)

Band chunks of equal size run as one batched call on strided views of q, k, v (the chunks are the
batch), so a prefill is about ten kernel calls whatever its length. All partial results are folded,
row by row, into a float32 output and log-sum-exp. Only the default
causal mask with positions 0 .. nk-1 (queries last) takes this route; everything else, and autograd,
stays with ``fast_attention``. CI has no GPU: ``tests/test_gpu_attention.py`` checks the schedule and
the merge on the CPU with a stand-in kernel, and ``benchmarks/bench_gpu.py`` checks the real kernels
against the reference where a GPU is present.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._checks import check_positive_int
from .fast_attention import GROUPED, NEIGHBOR, Piece, grouped_pieces, head_pieces, strided_runs


Attend = Callable[..., tuple[torch.Tensor, torch.Tensor]]  # (q, k, v, scale, causal) -> (o, lse)


def gpu_plan(nq: int, nk: int, window: int, chunk_rows: int | None = None) -> list[Piece]:
    """The pieces of the GPU schedule: every pair of the causal triangle in exactly one of them.

    ``chunk_rows``: rows per band chunk, at most (and by default) w - 1."""
    window = check_positive_int("window", window)
    if window < 2:
        raise ValueError(f"window must be >= 2 for the GPU schedule, got {window}")
    chunk_rows = window - 1 if chunk_rows is None else min(check_positive_int("chunk_rows", chunk_rows), window - 1)
    head, pieces = head_pieces(nq, nk, window)  # rows with t < w: no grouped key
    if head == nq:
        return pieces
    offset = nk - nq  # key index of query row 0
    pieces += grouped_pieces(head, nq, offset, window)  # one block: every row with a grouped key
    for r0 in range(head, nq, chunk_rows):
        r1 = min(nq, r0 + chunk_rows)
        rows, t0 = r1 - r0, offset + r0
        pieces.append(Piece(r0, r1, t0, t0 + rows, NEIGHBOR, "causal"))  # C
        if t0 - window + 1 + rows < t0:
            pieces.append(Piece(r0, r1, t0 - window + 1 + rows, t0, NEIGHBOR, "full"))  # B
        pieces.append(Piece(r0, r1, t0 - window + 1, t0 - window + 1 + rows, NEIGHBOR, "reversed"))  # A
    return pieces


_cudnn_refused = False  # set when cuDNN's attention refused a call in this process: flash from then on


def cuda_attend(q, k, v, scale: float, causal: bool):
    """(o [b, h, n, d], lse [b, h, n] float32) from torch's fused CUDA kernels.

    bfloat16 / float16: cuDNN's fused attention (what SDPA itself picks on Hopper), else FlashAttention-2;
    float32: the memory-efficient kernel (neither of the others takes float32).
    """
    global _cudnn_refused
    if q.dtype in (torch.float16, torch.bfloat16):
        if not _cudnn_refused and torch.backends.cuda.cudnn_sdp_enabled():
            try:
                out, lse = torch.ops.aten._scaled_dot_product_cudnn_attention(
                    q, k, v, None, True, 0.0, causal, False, scale=scale)[:2]
                return out, lse.reshape(q.shape[:3]).float()  # cuDNN gives [b, h, n, 1]
            except RuntimeError:  # no cuDNN attention for this build / GPU / layout
                _cudnn_refused = True
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal, False, scale=scale)[:2]
    else:
        out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(
            q, k, v, None, True, 0.0, causal, scale=scale)[:2]
    return out, lse[..., : q.shape[2]].float()


def math_attend(q, k, v, scale: float, causal: bool):
    """The same contract as ``cuda_attend`` with plain operations (any device; for tests)."""
    x = (q.float() @ k.float().transpose(-1, -2)) * scale
    if causal:  # a square piece: row r takes keys <= r
        x = x.masked_fill(~torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device).tril(), float("-inf"))
    return (torch.softmax(x, dim=-1) @ v.float()).to(v.dtype), torch.logsumexp(x, dim=-1)


def _runs(x: torch.Tensor, runs: int, step: int, length: int, first: int) -> torch.Tensor:
    """[runs * b, h, length, d] from x [b, h, n, d]: ``strided_runs`` of each batch row (b = 1: a view, no copy)."""
    views = [strided_runs(row, runs, step, length, first) for row in x]
    return views[0] if len(views) == 1 else torch.cat(views)


def _run(group: list[Piece], q, k, v, scale: float, attend: Attend):
    """(o [b, h, rows, d], lse [b, h, rows]) of pieces of one shape, rows and keys advancing together.

    Several pieces become one batched call on strided views (the pieces are the batch): the rows of
    piece i are r0 + i * R, its keys k0 + i * R, so every chunk of the band is one call, not many.
    """
    first, rows, width = group[0], group[0].r1 - group[0].r0, group[0].k1 - group[0].k0
    b, h = q.shape[:2]
    qs, ks, vs = (_runs(x, len(group), rows, n, start) for x, n, start in
                  ((q, rows, first.r0), (k, width, first.k0), (v, width, first.k0)))
    if first.shape == "reversed":  # r~ = R-1-r, j~ = R-1-j turn  j >= r  into the causal  j~ <= r~
        out, lse = attend(qs.flip(2), ks.flip(2), vs.flip(2), scale, True)
        out, lse = out.flip(2), lse.flip(2)
    else:
        out, lse = attend(qs, ks, vs, scale, first.shape == "causal")
    # [runs * b, h, R, .] -> [b, h, runs * R, .]: run i holds rows r0 + i R .. r0 + (i + 1) R - 1
    out = out.reshape(b, len(group), h, rows, -1).permute(0, 2, 1, 3, 4).reshape(b, h, len(group) * rows, -1)
    lse = lse.reshape(b, len(group), h, rows).permute(0, 2, 1, 3).reshape(b, h, len(group) * rows)
    return out, lse


def _groups(pieces: list[Piece]) -> list[list[Piece]]:
    """Pieces in runs that one batched call can take: same kind, shape, size and key offset, rows adjacent."""
    groups = []
    for piece in pieces:
        last = groups[-1][-1] if groups else None
        if (last is not None and (piece.kind, piece.shape) == (last.kind, last.shape)
                and piece.r1 - piece.r0 == last.r1 - last.r0 and piece.k1 - piece.k0 == last.k1 - last.k0
                and piece.r0 == last.r1 and piece.k0 - piece.r0 == last.k0 - last.r0):
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def gpu_merged_attention(q_neighbor, k_neighbor, q_grouped, k_grouped, v, window: int, *, scale: float,
                         chunk_rows: int | None = None, attend: Attend | None = None) -> torch.Tensor:
    """Exact SelfExtend attention, default causal mask and positions, on rotated q_* [b, hq, nq, d],
    k_*, v [b, hkv, nk, d] -> [b, hq, nq, d] in v's dtype; ``attend`` defaults to ``cuda_attend``.

    Band chunks default to w - 1 rows (then the full piece B is empty): equal chunks run batched.
    """
    window = check_positive_int("window", window)
    attend = attend or cuda_attend
    b, hq, nq, _ = q_neighbor.shape
    hkv, nk = k_neighbor.shape[1], k_neighbor.shape[2]
    if hq != hkv:  # grouped-query attention: the fused kernels want one k/v head per query head
        k_neighbor, k_grouped, v = (t.repeat_interleave(hq // hkv, dim=1) for t in (k_neighbor, k_grouped, v))
    out = torch.zeros(b, hq, nq, v.shape[-1], dtype=torch.float32, device=v.device)
    total = torch.full((b, hq, nq), float("-inf"), dtype=torch.float32, device=v.device)
    band_rows = window - 1 if chunk_rows is None else chunk_rows
    by_kind = {}  # pieces of one kind, in row order, so equal band chunks are adjacent
    for piece in gpu_plan(nq, nk, window, band_rows):
        by_kind.setdefault((piece.kind, piece.shape), []).append(piece)
    written = torch.zeros(nq, dtype=torch.bool)  # rows that hold a partial result already (on the CPU)
    for (kind, _), pieces in by_kind.items():
        q, k = (q_grouped, k_grouped) if kind == GROUPED else (q_neighbor, k_neighbor)
        for group in _groups(pieces):
            part, lse = _run(group, q, k, v, scale, attend)
            rows = slice(group[0].r0, group[-1].r1)
            if not bool(written[rows].any()):  # a row's first part: nothing to merge with yet
                out[:, :, rows], total[:, :, rows] = part, lse
            else:
                seen = total[:, :, rows]
                merged = torch.logaddexp(seen, lse)  # l = log(e^l_acc + e^l_s)
                weight_seen, weight_part = (seen - merged).exp_()[..., None], (lse - merged).exp_()[..., None]
                out[:, :, rows].mul_(weight_seen).addcmul_(part, weight_part)
                seen.copy_(merged)
            written[rows] = True
    return out.to(v.dtype)
