"""Fast, memory-lean EXACT SelfExtend attention: query chunks, key segments, log-sum-exp merge.

The same kernel serves every *region map* (``fast_region_attention``): R position regions chosen by
``u(i) - u(j) >= t_r`` for thresholds t_1 < ... < t_{R-1}, each with its own rotated q and k.
SelfExtend is R = 2 with u = position and t_1 = w (neighbor = region 0, grouped = region 1); its
relatives (ReRoPE, Dual Chunk Attention, ...) are other choices of u, thresholds and positions.
Below, "grouped" / "neighbor" read "a region" for R > 2: every step works region by region.

The reference (``merged_attention(..., implementation="reference")``) builds two [nq, nk] logit
matrices and picks one entry of each pair. But "each (query, key) pair uses exactly one of the two
logits", so SelfExtend needs no more arithmetic than one causal attention. This file computes the
same softmax without ever holding an [nq, nk] matrix:

1. Queries are cut into chunks of ``query_chunk`` rows. For one chunk every key j is classified from
   the positions alone:   grouped  if  min_i(p_i) - p_j >= w  for every query i of the chunk,
                          neighbor if  max_i(p_i) - p_j <  w  for every query i of the chunk,
                          mixed    otherwise (a band about one chunk wide, near p_j = p_i - w),
   and by the attention mask: all rows may attend, some rows may, or none (skipped: future keys).
2. Consecutive keys of one class form a *segment*. A grouped segment is attended with grouped q/k
   only, a neighbor segment with neighbor q/k only; only a mixed segment computes both, each with
   the half of the band it owns (``p_i - p_j >= w`` or ``< w``) masked.
3. Each segment s gives a partial result: its softmax-weighted mean o_s and its log-sum-exp
   l_s = log sum_{j in s} exp(x_ij). The exact attention over all segments is

        out = sum_s exp(l_s - l) o_s,    l = log sum_s exp(l_s)          (log-sum-exp merge)

   because softmax over a union of key sets is the l_s-weighted mix of the per-set softmaxes.

On CPU without autograd and without a softcap each segment is one call of torch's fused flash
attention kernel (``_scaled_dot_product_flash_attention_for_cpu``, which returns l_s); otherwise
(softcap, gradients, other devices) the chunk's logits over the used key range are built segment
by segment and go through one ordinary softmax, which autograd differentiates. Memory is O(nq + nk)
plus one chunk.

The common case, the default causal mask with consecutive positions, has its own schedules:
* prefill (``band_plan``): blocks of BLOCK_ROWS query rows; a block's grouped keys are one full
  rectangle and one causal square, its neighbor band one *batched* fused call (runs of up to
  BAND_ROWS rows, each against its w + rows - 1 keys, are the batch, read through strided views with
  one shared mask). The grouped queries may be handed over as a function of (start, stop), so they
  are rotated one block at a time;
* decoding (nq = 1, ``_decode_step``): one row of logits, one softmax, one product with v.

Sliding-window attention (``sliding_window_attention``, Mistral's window: keys 0 <= i - j < w) is
the neighbor band alone: ``sliding_window_plan`` is ``band_plan`` with the grouped pieces dropped.

Masked logits behave as in the reference: a finite minimum fill, so a fully masked (padding) row
gets the mean of v over all keys instead of NaN.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._checks import check_float_tensor, check_positive_int

GROUPED, NEIGHBOR, MIXED = "grouped", "neighbor", "mixed"
_MIXED_CODE = 127  # int8 code of a key whose region differs between rows of the chunk
QUERY_CHUNK = 256  # rows per chunk of the general fused path: its mixed band costs ~chunk x chunk extra
BLOCK_ROWS = 1024  # query rows per block of the banded schedule (grouped queries exist one block at a time)
BAND_ROWS = 32  # most rows per run of a neighbor band: a run computes w + rows - 1 keys for the w it needs
MAX_MASKED_KEYS = 2048  # masked segments wider than this are split, so a mask is at most chunk x 2048
MAX_SEGMENTS = 16  # more runs than this (scrambled positions or masks): one masked mixed segment
MANUAL_CHUNK_BYTES = 16 * 2**20  # logits held per chunk by the autograd / softcap path

_ALL, _SOME, _NONE = 0, 1, 2  # how many rows of the chunk may attend a key

_flash_with_lse = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


@dataclass(frozen=True)
class Segment:
    """Keys start:end of one query chunk, attended with ``kind`` q/k; ``masked``: some rows may not attend."""

    start: int
    end: int
    kind: str
    masked: bool


def _as_4d(mask: torch.Tensor) -> torch.Tensor:
    """A mask broadcastable to [b, h, nq, nk] as a 4-D view with leading 1s."""
    if mask.dim() > 4:
        raise ValueError(f"attn_mask must have at most 4 dimensions, got shape {tuple(mask.shape)}")
    return mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))


def _chunk_rows(mask4: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Rows start:end of a 4-D mask (a row dimension of size 1 broadcasts)."""
    return mask4 if mask4.shape[2] == 1 else mask4[:, :, start:end]


def as_thresholds(window) -> tuple[int, ...]:
    """A window w as the one threshold (w,), or checked strictly increasing positive thresholds."""
    if isinstance(window, (tuple, list)):
        if not window:
            raise ValueError("thresholds must hold at least one value (two regions)")
        values = tuple(check_positive_int("thresholds", t) for t in window)
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"thresholds must be strictly increasing, got {values}")
        return values
    return (check_positive_int("window", window),)


def region_name(region: int) -> str:
    """Region 0 is "neighbor", region 1 "grouped" (SelfExtend's names), region r >= 2 "region r"."""
    return (NEIGHBOR, GROUPED)[region] if region < 2 else f"region {region}"


def _region_of(distance: torch.Tensor, thresholds: tuple[int, ...]) -> torch.Tensor:
    """int8 region index  #{r : distance >= t_r}  of every entry."""
    region = (distance >= thresholds[0]).to(torch.int8)
    for t in thresholds[1:]:
        region += distance >= t
    return region


def _key_kinds(query_pos: torch.Tensor, key_pos: torch.Tensor, window) -> torch.Tensor:
    """Per key, for one chunk of queries: its region if the same for every row, else _MIXED_CODE.

    For SelfExtend (one threshold w): region 1 (grouped) when p_i - p_j >= w for every query i of
    the chunk, region 0 (neighbor) when p_i - p_j < w for every one, mixed otherwise.
    """
    thresholds = as_thresholds(window)
    low, high = query_pos.min(), query_pos.max()  # over the chunk (and the batch)
    first, last = _region_of(low - key_pos, thresholds), _region_of(high - key_pos, thresholds)
    fixed = first == last  # the region is monotone in the query coordinate: every row between agrees
    if key_pos.dim() == 2:  # positions per batch row: the region must hold in every row
        fixed = fixed.all(0) & (first == first[:1]).all(0)
        first = first[0]
    return torch.where(fixed, first, torch.full_like(first, _MIXED_CODE))


def _key_access(mask_rows: torch.Tensor | None, row_start: int, row_end: int, nq: int, nk: int) -> torch.Tensor:
    """Per key: _ALL rows of the chunk may attend it, _SOME may, or _NONE (default mask: causal)."""
    index = torch.arange(nk)
    if mask_rows is None:  # query row r sits at key index nk - nq + r
        first, last = nk - nq + row_start, nk - nq + row_end - 1
        return torch.where(index <= first, _ALL, torch.where(index <= last, _SOME, _NONE)).to(torch.int8)
    every = mask_rows.all(dim=2).all(dim=1).all(dim=0).expand(nk).cpu()
    some = mask_rows.any(dim=2).any(dim=1).any(dim=0).expand(nk).cpu()
    return torch.where(every, _ALL, torch.where(some, _SOME, _NONE)).to(torch.int8)


def plan_chunk(
    query_pos: torch.Tensor,
    key_pos: torch.Tensor,
    window: int,
    row_start: int,
    row_end: int,
    nq: int,
    mask_rows: torch.Tensor | None = None,
    max_masked_keys: int = MAX_MASKED_KEYS,
) -> list[Segment]:
    """The key segments of query rows row_start:row_end (positions [nq]/[b, nq] and [nk]/[b, nk])."""
    nk = key_pos.shape[-1]
    kinds = _key_kinds(query_pos[..., row_start:row_end], key_pos, window).cpu()
    access = _key_access(mask_rows, row_start, row_end, nq, nk)
    code = kinds.long() * 3 + access.long()
    cuts = [0, *(torch.nonzero(code[1:] != code[:-1]).flatten() + 1).tolist(), nk]
    names = {_MIXED_CODE: MIXED}
    runs = [
        Segment(a, b, names.get(int(kinds[a])) or region_name(int(kinds[a])), int(access[a]) == _SOME)
        for a, b in zip(cuts[:-1], cuts[1:])
        if int(access[a]) != _NONE
    ]
    if len(runs) > MAX_SEGMENTS:  # scrambled positions or masks: one span, both q/k, masks decide
        runs = [Segment(runs[0].start, runs[-1].end, MIXED, True)]
    segments = []
    for seg in runs:  # bound the size of any mask we build
        if seg.masked or seg.kind == MIXED:
            for a in range(seg.start, seg.end, max_masked_keys):
                segments.append(Segment(a, min(seg.end, a + max_masked_keys), seg.kind, seg.masked))
        else:
            segments.append(seg)
    return segments


def plan(
    query_positions: torch.Tensor,
    key_positions: torch.Tensor,
    window: int,
    query_chunk: int = QUERY_CHUNK,
    attn_mask: torch.Tensor | None = None,
) -> list[tuple[int, int, list[Segment]]]:
    """The whole schedule: (row_start, row_end, segments) for every chunk of queries (for pictures)."""
    nq, nk = query_positions.shape[-1], key_positions.shape[-1]
    mask4 = None if attn_mask is None else _as_4d(attn_mask)
    schedule = []
    for start in range(0, nq, query_chunk):
        end = min(nq, start + query_chunk)
        rows = None if mask4 is None else _chunk_rows(mask4, start, end)
        schedule.append((start, end, plan_chunk(query_positions, key_positions, window, start, end, nq, rows)))
    return schedule


def _allowed(
    seg: Segment, mask_rows, query_pos, key_pos, window: int, row_start: int, row_end: int, nq: int, nk: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(may-attend mask, is-grouped mask) of one segment as 4-D bool tensors, or None where not needed."""
    keys = slice(seg.start, seg.end)
    allowed = None
    if seg.masked:
        if mask_rows is None:  # causal: key index j <= nk - nq + r
            rows = torch.arange(nk - nq + row_start, nk - nq + row_end, device=key_pos.device)
            allowed = (torch.arange(seg.start, seg.end, device=key_pos.device) <= rows[:, None])[None, None]
        else:  # a key dimension of size 1 broadcasts
            allowed = mask_rows if mask_rows.shape[-1] == 1 else mask_rows[..., keys]
        allowed = allowed.expand(*allowed.shape[:2], row_end - row_start, seg.end - seg.start)
    regions = None
    if seg.kind == MIXED:  # the region of every element (grouped: p_i - p_j >= w): [C, S] or [b, C, S] -> 4-D
        distance = query_pos[..., row_start:row_end, None] - key_pos[..., None, keys]
        regions = _region_of(distance, as_thresholds(window)).reshape((-1, 1) + distance.shape[-2:])
    return allowed, regions


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Bool mask -> 0 where allowed, the finite minimum elsewhere (a fully masked row stays finite)."""
    if mask is None:
        return None
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)


def _combine(allowed, regions, region: int):
    """allowed & (regions == region), either possibly None (= everywhere True)."""
    if regions is None:
        return allowed
    side = regions == region
    return side if allowed is None else allowed & side


def _attend(q, k, v, scale: float, *, causal: bool = False, mask: torch.Tensor | None = None):
    """(o, l): softmax attention of q over k, v and its log-sum-exp per row, from the fused kernel."""
    out, lse = _flash_with_lse(q, k, v, is_causal=causal, attn_mask=_additive(mask, q.dtype), scale=scale)
    return out, lse.to(q.dtype)


def _fold(acc, part):
    """Merge two partial results over disjoint key sets:  l = logaddexp(l1, l2),  o = sum exp(l_s - l) o_s."""
    if acc is None:
        return part
    (out_a, lse_a), (out_b, lse_b) = acc, part
    lse = torch.logaddexp(lse_a, lse_b)
    return out_a * (lse_a - lse).exp()[..., None] + out_b * (lse_b - lse).exp()[..., None], lse


def _consecutive(query_positions: torch.Tensor, key_positions: torch.Tensor) -> bool:
    """True when the key positions are offset + 0, 1, 2, ... (per row) and the queries are the last ones."""
    nq, nk = query_positions.shape[-1], key_positions.shape[-1]
    steps = torch.arange(nk, device=key_positions.device)
    if not bool((key_positions - key_positions[..., :1] == steps).all()):
        return False
    tail = key_positions[..., nk - nq:]
    if query_positions.dim() == 2 and tail.dim() == 2 and query_positions.shape[0] != tail.shape[0]:
        return False  # one row of keys per batch row against one row of queries for all: compare rows
    return bool((query_positions == tail).all())


def default_positions(nq: int, nk: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(query, key) positions meant by None, None: keys 0 .. nk-1, the queries the last nq of them."""
    keys = torch.arange(nk, device=device)
    return keys[nk - nq:], keys


@dataclass(frozen=True)
class Piece:
    """One fused call of the banded schedule: query rows r0:r1 against keys k0:k1.

    ``kind``: which q/k (grouped or neighbor); ``shape``: "full" (no mask), "causal" (row r takes
    key k0 + (r - r0) and earlier: a square, top-left aligned) or "band" (row r takes its whole
    neighbor band, keys t - w + 1 .. t with t = nk - nq + r; the rows are cut into runs of
    ``band_rows``, all runs in one batched call that shares one [band_rows, w + band_rows - 1] mask).
    """

    r0: int
    r1: int
    k0: int
    k1: int
    kind: str
    shape: str


def band_rows_for(window: int) -> int:
    """Rows per run of a "band" piece: w // 8 within [1, BAND_ROWS] (a run computes w + rows - 1 keys for w)."""
    return max(1, min(BAND_ROWS, window // 8))


def band_plan(nq: int, nk: int, window: int, block_rows: int = BLOCK_ROWS) -> list[list[Piece]]:
    """The banded schedule for the default causal mask: per block of query rows, the pieces to fold.

    Query row r sits at key index t = nk - nq + r.
      head rows (t < w)   have no grouped key: their neighbor keys are all keys 0 .. t, one causal
                          square (plus a full rectangle of the keys before the first query when nq < nk);
      then blocks of ``block_rows`` rows r0 .. r1-1, with s = t(r0) - w:
        grouped   keys 0 .. s-1 (every row: "full") and s .. s + rows - 1 ("causal": row r takes j <= t - w);
        neighbor  each row's band t - w + 1 .. t ("band": runs of rows batched into one call).
    Every (query, key) pair of the causal triangle lands in exactly one piece, with the right q/k.
    """
    window = check_positive_int("window", window)
    block_rows = check_positive_int("block_rows", block_rows)
    head, pieces = head_pieces(nq, nk, window)
    blocks = [pieces] if head else []
    offset = nk - nq  # key index of query row 0
    for r0 in range(head, nq, block_rows):
        r1 = min(nq, r0 + block_rows)
        pieces = grouped_pieces(r0, r1, offset, window)
        pieces.append(Piece(r0, r1, offset + r0 - window + 1, offset + r1, NEIGHBOR, "band"))
        blocks.append(pieces)
    return blocks


def head_pieces(nq: int, nk: int, window: int) -> tuple[int, list[Piece]]:
    """(head, pieces): rows r < head have t = nk - nq + r < w, so no grouped key; their neighbor keys
    0 .. t are one causal square, plus a full rectangle of the keys before the first query when nq < nk."""
    offset = nk - nq  # key index of query row 0
    head = min(nq, max(0, window - offset))
    if not head:
        return 0, []
    pieces = [Piece(0, head, offset, offset + head, NEIGHBOR, "causal")]
    if offset:
        pieces.append(Piece(0, head, 0, offset, NEIGHBOR, "full"))
    return head, pieces


def grouped_pieces(r0: int, r1: int, offset: int, window: int) -> list[Piece]:
    """The grouped keys j <= t - w of rows r0 .. r1-1 (all with t >= w; row r at key index offset + r):
    a causal square from s = t(r0) - w, plus the full rectangle of keys 0 .. s-1 when s > 0."""
    split = offset + r0 - window  # >= 0: grouped keys of row r0 are 0 .. split
    pieces = [Piece(r0, r1, split, split + (r1 - r0), GROUPED, "causal")]
    if split:
        pieces.append(Piece(r0, r1, 0, split, GROUPED, "full"))
    return pieces


def _band_mask(rows: int, window: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Additive [1, 1, rows, window + rows - 1] mask of one run: row r takes local keys r .. r + window - 1."""
    r = torch.arange(rows, device=device)[:, None]
    c = torch.arange(window + rows - 1, device=device)
    return _additive(((c >= r) & (c < r + window))[None, None], dtype)


def strided_runs(x: torch.Tensor, runs: int, step: int, length: int, first: int) -> torch.Tensor:
    """[runs, h, length, d] view of x [h, n, d]: run i is rows first + i * step .. + length - 1 (may overlap).

    No copy: the runs share x's storage, so overlapping key windows cost nothing (x's last dim contiguous)."""
    head_stride, row_stride, _ = x.stride()
    return x.as_strided((runs, x.shape[0], length, x.shape[2]), (step * row_stride, head_stride, row_stride, 1),
                        x.storage_offset() + first * row_stride)


def _band(piece: Piece, q, k, v, window: int, scale: float, band_rows: int, nq: int):
    """(o, l) of a "band" piece: runs of ``band_rows`` rows as one batched call on strided views of q, k, v."""
    b, hq, _, d = q.shape
    hkv, nk, dv = k.shape[1], k.shape[2], v.shape[-1]
    rows = piece.r1 - piece.r0
    runs, rest = divmod(rows, band_rows)
    width = window + band_rows - 1
    out = torch.empty(b, hq, rows, dv, dtype=v.dtype, device=v.device)
    lse = torch.empty(b, hq, rows, dtype=v.dtype, device=v.device)
    mask = _band_mask(band_rows, window, v.dtype, v.device)
    first_key = nk - nq + piece.r0 - window + 1  # of row r0's band
    for i in range(b):  # runs become the batch dimension of the fused call (overlapping key windows: no copy)
        if runs:
            qs = strided_runs(q[i], runs, band_rows, band_rows, piece.r0)
            ks, vs = (strided_runs(x[i], runs, band_rows, width, first_key) for x in (k, v))
            o, l = _flash_with_lse(qs, ks, vs, attn_mask=mask, scale=scale)
            out[i, :, : runs * band_rows] = o.transpose(0, 1).reshape(hq, runs * band_rows, dv)
            lse[i, :, : runs * band_rows] = l.transpose(0, 1).reshape(hq, runs * band_rows)
        if rest:
            r0, k0 = piece.r0 + runs * band_rows, first_key + runs * band_rows
            keys = slice(k0, k0 + window + rest - 1)
            o, l = _flash_with_lse(q[i : i + 1, :, r0 : r0 + rest], k[i : i + 1, :, keys], v[i : i + 1, :, keys],
                                   attn_mask=mask[:, :, :rest, : window + rest - 1], scale=scale)
            out[i, :, runs * band_rows :], lse[i, :, runs * band_rows :] = o[0], l[0]
    return out, lse


def _run_piece(piece: Piece, q, k, v, window: int, scale: float, nq: int, band_rows: int):
    """(o, l) of one piece of the banded schedule; q holds the piece's rows only unless it is a band."""
    if piece.shape == "band":
        return _band(piece, q, k, v, window, scale, band_rows, nq)
    keys = slice(piece.k0, piece.k1)
    return _attend(q, k[:, :, keys], v[:, :, keys], scale, causal=piece.shape == "causal")


def _fold_into(dest: torch.Tensor, parts) -> None:
    """dest <- the log-sum-exp merge of parts [(o_s, l_s), ...] over disjoint key sets (no running copies)."""
    if len(parts) == 1:
        dest.copy_(parts[0][0])
        return
    total = torch.logsumexp(torch.stack([lse for _, lse in parts]), dim=0)
    for n, (out, lse) in enumerate(parts):
        weight = (lse - total).exp_()[..., None]  # e^(l_s - l)
        torch.mul(out, weight, out=dest) if n == 0 else dest.addcmul_(out, weight)


def _banded(qn, kn, grouped_query, kg, v, window: int, scale: float, block_rows: int) -> torch.Tensor:
    """Default causal mask, consecutive positions: the ``band_plan`` schedule, block by block.

    ``grouped_query(start, stop)`` gives rows start:stop of the grouped queries: only one block of
    them exists at a time.
    """
    b, hq, nq, _ = qn.shape
    band_rows = band_rows_for(window)
    out = torch.empty(b, hq, nq, v.shape[-1], dtype=v.dtype, device=v.device)
    for pieces in band_plan(nq, kn.shape[2], window, block_rows):
        r0, r1 = pieces[0].r0, pieces[0].r1
        qg = grouped_query(r0, r1) if any(p.kind == GROUPED for p in pieces) else None
        parts = []
        for piece in pieces:
            if piece.kind == GROUPED:
                parts.append(_run_piece(piece, qg, kg, v, window, scale, nq, band_rows))
            elif piece.shape == "band":
                parts.append(_run_piece(piece, qn, kn, v, window, scale, nq, band_rows))
            else:
                parts.append(_run_piece(piece, qn[:, :, r0:r1], kn, v, window, scale, nq, band_rows))
        _fold_into(out[:, :, r0:r1], parts)
    return out


def _decode_step(qn, kn, qg, kg, v, window: int, scale: float, softcap: float | None) -> torch.Tensor:
    """One query at the last position, consecutive positions: grouped keys are the first nk - w.

    The row's logits are one [.., nk] row: the grouped part (a matrix product with the grouped keys)
    next to the band (one with the neighbor keys); then one softmax and one product with v. A handful
    of small operations, no fold: a decoding step costs about what one attention row costs.
    """
    b, hq, _, d = qn.shape
    hkv, nk = kn.shape[1], kn.shape[2]
    split = max(0, nk - window)
    rep = hq // hkv  # grouped-query attention: a kv head's query heads become rows

    def logits(q, k):  # [b, hkv, rep, keys], the scale applied to the (small) query
        return (q.reshape(b, hkv, rep, d) * scale) @ k.transpose(-1, -2)

    x = torch.cat((logits(qg, kg[:, :, :split]), logits(qn, kn[:, :, split:])), dim=-1)
    if softcap is not None:
        x = softcap * torch.tanh(x / softcap)
    return (torch.softmax(x, dim=-1) @ v).reshape(b, hq, 1, v.shape[-1])


def _fused_chunk(qs, ks, v, segments, allowed_of, scale: float) -> torch.Tensor:
    """One chunk of the general schedule on the fused kernel: each segment gives (o_s, l_s); merge them."""
    acc = None
    for seg in segments:
        keys = slice(seg.start, seg.end)
        allowed, regions = allowed_of(seg)
        for region, (q, k) in enumerate(zip(qs, ks)):  # neighbor (region 0), then grouped (region 1), ...
            if seg.kind in (region_name(region), MIXED):
                mask = _combine(allowed, regions, region)
                acc = _fold(acc, _attend(q, k[:, :, keys], v[:, :, keys], scale, mask=mask))
    return acc[0]


def _gqa_matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x [b, hq, r, c] @ y [b, hkv, c, s] -> [b, hq, r, s], head h using y head h // (hq // hkv)."""
    b, hq, r, c = x.shape
    hkv = y.shape[1]
    return (x.reshape(b, hkv, (hq // hkv) * r, c) @ y).reshape(b, hq, r, y.shape[-1])


def _manual_chunk(qs, ks, v, segments, allowed_of, scale: float, softcap: float | None) -> torch.Tensor:
    """One chunk through ordinary ops (autograd, softcap): logits of the used key span, one softmax."""
    fill = torch.finfo(v.dtype).min
    start, end = segments[0].start, segments[-1].end
    pieces, cursor = [], start
    b, hq, rows, _ = qs[0].shape
    names = [region_name(r) for r in range(len(qs))]

    def logits(q, k, keys):
        x = _gqa_matmul(q, k[:, :, keys].transpose(-1, -2)) * scale
        return x if softcap is None else softcap * torch.tanh(x / softcap)

    for seg in segments:
        if seg.start > cursor:  # keys no row may attend, between two segments
            pieces.append(torch.full((b, hq, rows, seg.start - cursor), fill, dtype=v.dtype, device=v.device))
        keys = slice(seg.start, seg.end)
        allowed, regions = allowed_of(seg)
        if seg.kind != MIXED:
            region = names.index(seg.kind)
            x = logits(qs[region], ks[region], keys)
        else:  # merge by replacement, region by region (SelfExtend: where(grouped, grouped, neighbor))
            x = logits(qs[0], ks[0], keys)
            for region in range(1, len(qs)):
                x = torch.where(regions == region, logits(qs[region], ks[region], keys), x)
        if allowed is not None:
            x = x.masked_fill(~allowed, fill)
        pieces.append(x)
        cursor = seg.end
    weights = torch.softmax(torch.cat(pieces, dim=-1), dim=-1)
    return _gqa_matmul(weights, v[:, :, start:end])


def fast_merged_attention(
    q_neighbor: torch.Tensor,
    k_neighbor: torch.Tensor,
    q_grouped: torch.Tensor | Callable[[int, int], torch.Tensor],
    k_grouped: torch.Tensor,
    v: torch.Tensor,
    query_positions: torch.Tensor | None,
    key_positions: torch.Tensor | None,
    window: int,
    *,
    scale: float,
    attn_mask: torch.Tensor | None = None,
    softcap: float | None = None,
    query_chunk: int | None = None,
) -> torch.Tensor:
    """Exact SelfExtend attention on rotated q_* [b, hq, nq, d], k_*, v [b, hkv, nk, d], O(nq + nk) memory.

    Same contract as ``merged_attention``: grouped where query_position - key_position >= window,
    ``attn_mask`` (bool, True = may attend, broadcastable to [b, hq, nq, nk]) replaces the causal
    mask, ``softcap`` applies c * tanh(x / c) to the logits. Returns [b, hq, nq, d] in v's dtype.
    ``q_grouped`` may be a function (start, stop) -> those rows (rotated as needed, block by block);
    positions both None mean 0 .. nk-1, queries last. The two-region case of ``fast_region_attention``.
    """
    window = check_positive_int("window", window)
    return fast_region_attention(
        (q_neighbor, q_grouped), (k_neighbor, k_grouped), v, query_positions, key_positions, (window,),
        scale=scale, attn_mask=attn_mask, softcap=softcap, query_chunk=query_chunk,
    )


def fast_region_attention(
    qs: Sequence[torch.Tensor],
    ks: Sequence[torch.Tensor],
    v: torch.Tensor,
    query_coords: torch.Tensor | None,
    key_coords: torch.Tensor | None,
    thresholds: Sequence[int],
    *,
    scale: float,
    attn_mask: torch.Tensor | None = None,
    softcap: float | None = None,
    query_chunk: int | None = None,
) -> torch.Tensor:
    """Exact attention over R position regions in O(nq + nk) memory: one softmax over the merged logits.

    qs[r] [b, hq, nq, d] and ks[r] [b, hkv, nk, d] are q and k rotated to region r's positions. The
    pair (i, j) uses region  r = #{t in thresholds : u_i - u_j >= t}  with query coordinates
    ``query_coords`` u_i ([nq] or [b, nq]) and key coordinates ``key_coords`` u_j ([nk] or [b, nk]);
    both None: positions 0 .. nk-1 with the queries last (a decoder's usual case: nothing to check).
    ``attn_mask`` and ``softcap`` as in ``fast_merged_attention``. Returns [b, hq, nq, d] in v's dtype.
    With two regions, qs[1] may be a function ``(start, stop) -> rows start:stop of the grouped
    queries``: the banded schedule then rotates one block of them at a time (less memory).
    """
    thresholds = as_thresholds(tuple(thresholds))
    grouped_query = qs[1] if len(qs) == 2 and callable(qs[1]) else None
    if any(callable(q) for q in qs) and grouped_query is None or callable(qs[0]):
        raise ValueError("only qs[1], the grouped queries of two regions, may be a function of (start, stop)")
    if len(qs) != len(thresholds) + 1 or len(ks) != len(qs):
        raise ValueError(
            f"qs and ks must hold one tensor per region ({len(thresholds) + 1}), got {len(qs)} and {len(ks)}"
        )
    if query_chunk is not None:
        query_chunk = check_positive_int("query_chunk", query_chunk)
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be a positive number or None, got {softcap!r}")
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        raise ValueError(f"attn_mask must be a bool tensor (True = may attend), got {attn_mask.dtype}")
    b, hq, nq, _ = qs[0].shape
    nk = ks[0].shape[2]
    out_dtype = v.dtype
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    if grouped_query is not None and torch.is_grad_enabled() and any(t.requires_grad for t in (qs[0], *ks, v)):
        qs, grouped_query = (qs[0], grouped_query(0, nq)), None  # autograd: the whole tensor
    convert = lambda t: t if t.dtype == compute else t.to(compute)  # noqa: E731
    qs = [t if t is grouped_query else convert(t) for t in qs]
    ks, vc = [convert(t) for t in ks], convert(v)
    positions_default = query_coords is None and key_coords is None
    if positions_default:  # 0 .. nk-1, queries last: consecutive by definition, nothing to check
        query_pos = key_pos = None
    elif query_coords is None or key_coords is None:
        raise ValueError("query_coords and key_coords must both be tensors, or both None (positions 0 .. nk-1)")
    else:
        query_pos, key_pos = query_coords.to(qs[0].device), key_coords.to(qs[0].device)
    mask4 = None if attn_mask is None else _as_4d(attn_mask.to(qs[0].device))

    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (*qs, *ks, vc) if t is not grouped_query)
    fused = _flash_with_lse is not None and qs[0].device.type == "cpu" and softcap is None and not grad
    window = thresholds[0]
    two_regions = len(thresholds) == 1 and mask4 is None
    consecutive = two_regions and (positions_default or _consecutive(query_pos, key_pos))
    if consecutive and nq == 1:  # decoding: one row of logits
        q_grouped = qs[1] if grouped_query is None else convert(grouped_query(0, 1))
        return _decode_step(qs[0], ks[0], q_grouped, ks[1], vc, window, scale, softcap).to(out_dtype)
    if fused and consecutive and nq > 0:
        if grouped_query is None:
            grouped_query = lambda start, stop: qs[1][:, :, start:stop]  # noqa: E731
        rows = BLOCK_ROWS if query_chunk is None else query_chunk
        qn, kn, kg, vc = (t if t.stride(-1) == 1 else t.contiguous() for t in (qs[0], ks[0], ks[1], vc))
        rows_of = lambda start, stop: convert(grouped_query(start, stop))  # noqa: E731
        return _banded(qn, kn, rows_of, kg, vc, window, scale, rows).to(out_dtype)
    if grouped_query is not None:  # the other schedules take whole tensors
        qs[1] = convert(grouped_query(0, nq))
    if positions_default:
        query_pos, key_pos = default_positions(nq, nk, qs[0].device)
    if query_chunk is None:
        per_row = b * hq * nk * qs[0].element_size() * (len(qs) + 1)
        query_chunk = QUERY_CHUNK if fused else max(1, min(256, MANUAL_CHUNK_BYTES // per_row))

    mean_v = None  # what a fully masked row gets (the reference: uniform weights over all keys)
    if mask4 is not None:
        mean_v = vc.mean(dim=2, keepdim=True).repeat_interleave(hq // vc.shape[1], dim=1)

    out = torch.empty(b, hq, nq, vc.shape[-1], dtype=compute, device=qs[0].device)
    for start in range(0, nq, query_chunk):
        end = min(nq, start + query_chunk)
        rows = None if mask4 is None else _chunk_rows(mask4, start, end)
        segments = plan_chunk(query_pos, key_pos, thresholds, start, end, nq, rows)

        def allowed_of(seg, start=start, end=end, rows=rows):
            return _allowed(seg, rows, query_pos, key_pos, thresholds, start, end, nq, nk)

        chunk = [t[:, :, start:end] for t in qs]
        if not segments:  # every row of the chunk fully masked
            result = mean_v.expand(b, hq, end - start, -1)
        elif fused:
            result = _fused_chunk(chunk, ks, vc, segments, allowed_of, scale)
        else:
            result = _manual_chunk(chunk, ks, vc, segments, allowed_of, scale, softcap)
        if rows is not None:
            dead = ~rows.any(dim=-1, keepdim=True)  # [.., C, 1]: rows with no key at all
            if bool(dead.any()):
                result = torch.where(dead, mean_v, result)
        out[:, :, start:end] = result
    return out.to(out_dtype)


# ----------------------------------------------------------------------------------------------
# Sliding-window attention: SelfExtend's neighbor band alone (the grouped part dropped)
# ----------------------------------------------------------------------------------------------

SLIDING_CHUNK = 256  # query rows per block of the fallback path: its mask is [rows, rows + w - 1]


def sliding_window_plan(nq: int, nk: int, window: int, block_rows: int = BLOCK_ROWS) -> list[list[Piece]]:
    """``band_plan`` without its grouped pieces: per block of query rows, the pieces of the window.

    Row r (key index t = nk - nq + r) attends keys t - w + 1 .. t. Head rows (t < w) keep the whole
    causal prefix 0 .. t (all of it lies inside the window); every later block is one "band" piece.
    """
    return [[p for p in block if p.kind != GROUPED] for block in band_plan(nq, nk, window, block_rows)]


def _sliding_banded(q, k, v, window: int, scale: float, block_rows: int) -> torch.Tensor:
    """The ``sliding_window_plan`` schedule on the fused CPU kernel, block by block (folded per block)."""
    b, hq, nq, _ = q.shape
    band_rows = band_rows_for(window)
    out = torch.empty(b, hq, nq, v.shape[-1], dtype=v.dtype, device=v.device)
    for pieces in sliding_window_plan(nq, k.shape[2], window, block_rows):
        r0, r1 = pieces[0].r0, pieces[0].r1
        parts = [_run_piece(p, q if p.shape == "band" else q[:, :, r0:r1], k, v, window, scale, nq, band_rows)
                 for p in pieces]
        _fold_into(out[:, :, r0:r1], parts)
    return out


def _sliding_chunked(q, k, v, window: int, scale: float, rows: int) -> torch.Tensor:
    """Fallback (autograd, other devices): blocks of ``rows`` queries, each with a [rows, rows + w - 1] mask."""
    b, hq, nq, _ = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    offset = nk - nq  # key index of query row 0
    blocks = []
    for r0 in range(0, nq, rows):
        r1 = min(nq, r0 + rows)
        k0, k1 = max(0, offset + r0 - window + 1), offset + r1  # the keys any row of the block attends
        t = torch.arange(offset + r0, offset + r1, device=q.device)[:, None]
        j = torch.arange(k0, k1, device=q.device)[None, :]
        allowed = (j <= t) & (t - j < window)  # [rows, keys]: 0 <= t - j < w
        ks, vs = k[:, :, k0:k1], v[:, :, k0:k1]
        if hq != hkv:  # grouped-query attention: a kv head serves hq // hkv query heads
            ks, vs = (x.repeat_interleave(hq // hkv, dim=1) for x in (ks, vs))
        blocks.append(torch.nn.functional.scaled_dot_product_attention(
            q[:, :, r0:r1], ks, vs, attn_mask=allowed, scale=scale))
    return torch.cat(blocks, dim=2)


def _sliding_decode(q, k, v, window: int, scale: float) -> torch.Tensor:
    """One query at the last position: one row of logits over the last min(w, nk) keys, one softmax."""
    b, hq, _, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    keys = slice(max(0, nk - window), nk)
    x = (q.reshape(b, hkv, hq // hkv, d) * scale) @ k[:, :, keys].transpose(-1, -2)  # [b, hkv, rep, keys]
    return (torch.softmax(x, dim=-1) @ v[:, :, keys]).reshape(b, hq, 1, v.shape[-1])


def _check_sliding_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError unless q [b, hq, nq, d], k [b, hkv, nk, d], v [b, hkv, nk, dv] fit together."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, t, ndim=4)
    b, hq, nq, d = q.shape
    if k.shape[0] != b or k.shape[3] != d:
        raise ValueError(f"k must have shape [b, hkv, nk, d] = [{b}, hkv, nk, {d}], got {tuple(k.shape)}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v must have shape [b, hkv, nk, dv] with k's {tuple(k.shape[:3])}, got {tuple(v.shape)}")
    if k.shape[1] < 1 or hq % k.shape[1]:
        raise ValueError(f"q's heads ({hq}) must be a multiple of k's heads ({k.shape[1]})")
    if nq > k.shape[2]:
        raise ValueError(f"q must have at most nk = {k.shape[2]} rows (the queries are the last nq keys), got {nq}")


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, *, scale: float
) -> torch.Tensor:
    """Exact sliding-window attention on rotated q [b, hq, nq, d], k, v [b, hkv, nk, d] -> [b, hq, nq, d].

    Query row r sits at key index t = nk - nq + r (queries last) and attends keys j with
    0 <= t - j < window, one softmax (Mistral 7B: "each token can attend to at most W tokens from
    the previous layer"). SelfExtend's neighbor band with the grouped part dropped: nothing of size
    nq x nk is ever allocated. On CPU without autograd the ``sliding_window_plan`` schedule runs on
    the fused flash kernel; else blocks of query rows with a small mask go through torch SDPA.
    GQA: hq a multiple of hkv. Returns v's dtype.
    """
    window = check_positive_int("window", window)
    _check_sliding_inputs(q, k, v)
    b, hq, nq, _ = q.shape
    out_dtype = v.dtype
    compute = torch.float64 if out_dtype == torch.float64 else torch.float32
    q, k, v = (t if t.dtype == compute else t.to(compute) for t in (q, k, v))
    if nq == 0:
        return torch.empty(b, hq, 0, v.shape[-1], dtype=out_dtype, device=v.device)
    if nq == 1:  # decoding: the last min(w, nk) keys
        return _sliding_decode(q, k, v, window, scale).to(out_dtype)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if _flash_with_lse is not None and q.device.type == "cpu" and not grad:
        q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
        return _sliding_banded(q, k, v, window, scale, BLOCK_ROWS).to(out_dtype)
    return _sliding_chunked(q, k, v, window, scale, SLIDING_CHUNK).to(out_dtype)
