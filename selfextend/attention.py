"""SelfExtend attention (Jin et al., 2024, Algorithm 1): the clear reference version.

"ngb_q = apply_pos_emcode(q, pos); ngb_k = apply_pos_emcode(k, pos) ...
 g_pos = pos // g_size; shift = w_size - w_size // g_size; s_g_pos = g_pos + shift
 g_q = apply_pos_emcode(q, s_g_pos); g_k = apply_pos_emcode(k, g_pos) ...
 attn = where(mask, ngb_attn, g_attn); output = matmul(softmax(attn), v)"   (Algorithm 1)

Shapes: q [b, hq, nq, d], k and v [b, hkv, nk, d] with hq a multiple of hkv and nq <= nk.
The queries are the last nq of the nk positions (prefill: nq = nk; decoding: nq = 1).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import repeat

from ._checks import check_float_tensor, check_positions, check_positive_int
from .fast_attention import (_consecutive, as_thresholds, default_positions, fast_merged_attention,
                             fast_region_attention)
from .gpu_attention import gpu_merged_attention
from .rope import apply_rope

IMPLEMENTATIONS = {"auto", "fast", "reference"}
# "auto" takes the fast path from this many (query, key) pairs on, or from this many keys (decoding).
AUTO_FAST_MIN_PAIRS = 128 * 128
AUTO_FAST_MIN_KEYS = 1024


def validate_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError unless q, k, v have matching attention shapes and a float dtype."""
    for name, tensor in (("q", q), ("k", k), ("v", v)):
        check_float_tensor(name, tensor, ndim=4)
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(
            f"batch size (dim 0) of q, k, v must match, got {q.shape[0]}, {k.shape[0]}, {v.shape[0]}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"head_dim (last dim) of q and k must match, got {q.shape[-1]} and {k.shape[-1]}")
    if q.shape[-1] % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {q.shape[-1]}")
    if k.shape[1:3] != v.shape[1:3]:
        raise ValueError(
            f"k and v must have the same heads and length, got {tuple(k.shape)} and {tuple(v.shape)}"
        )
    if q.shape[1] % k.shape[1]:
        raise ValueError(
            f"heads of q ({q.shape[1]}) must be a multiple of heads of k/v ({k.shape[1]}) "
            "(grouped-query attention)"
        )
    if q.shape[2] > k.shape[2]:
        raise ValueError(
            f"q_len must be <= k_len (queries are the last positions), got {q.shape[2]} > {k.shape[2]}"
        )


def resolve_scale(scale: float | None, head_dim: int) -> float:
    """1/sqrt(head_dim) by default; a given scale must be a positive number."""
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number or None, got {scale!r}")
    return float(scale)


def queries_last_mask(nq: int, nk: int, device=None) -> torch.Tensor:
    """Bool [nq, nk], the default causal mask: query row r sits at key index nk - nq + r."""
    return torch.ones(nq, nk, dtype=torch.bool, device=device).tril(nk - nq)


def key_positions(positions: torch.Tensor | None, k: torch.Tensor) -> torch.Tensor:
    """Checked key positions, [nk] or [b, nk]; 0 .. nk-1 when ``positions`` is None."""
    if positions is None:
        return torch.arange(k.shape[2], device=k.device)
    return check_positions("positions", positions, k.shape[2], k.shape[0]).to(k.device)


def grouped_positions(positions: torch.Tensor, group_size: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(query, key) positions of grouped attention: p // g + (w - w // g) and p // g."""
    key = positions // group_size  # the floor operation (integer division)
    return key + (window - window // group_size), key


def merged_attention(
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
    return_weights: bool = False,
    implementation: str = "auto",
):
    """Merge neighbor and grouped logits by replacement, then one softmax (reference, O(nq*nk) memory).

    Inputs are already rotated: q_* [b, hq, nq, d], k_* and v [b, hkv, nk, d]. ``q_grouped`` may also
    be a function (start, stop) -> its rows start:stop (the fast path then rotates block by block).
    A key is grouped for a query when  query_position - key_position >= window; positions both None
    mean 0 .. nk-1 with the queries last (no check needed: the cheapest decoding step).
    ``attn_mask`` (bool, True = may attend, broadcastable to [b, hq, nq, nk]) replaces the default
    causal mask (query row r is at index nk - nq + r). ``softcap`` applies  c * tanh(x / c)  to logits.
    ``implementation``: "reference" (this function's two full logit matrices), "fast"
    (``selfextend.fast_attention``: the same result, exact, in O(nq + nk) memory, no weights) or
    "auto": "reference" when ``return_weights=True`` (only it forms the weights), when nq = 0, or
    for small problems (nq * nk < AUTO_FAST_MIN_PAIRS and nk < AUTO_FAST_MIN_KEYS), else "fast".
    The two-region case of ``region_attention`` (neighbor = region 0, grouped = region 1).
    """
    window = check_positive_int("window", window)
    return region_attention(
        (q_neighbor, q_grouped), (k_neighbor, k_grouped), v, query_positions, key_positions, (window,),
        scale=scale, attn_mask=attn_mask, softcap=softcap, return_weights=return_weights,
        implementation=implementation,
    )


def _gpu_route(qs, ks, v, query_coords, key_coords, thresholds, attn_mask, softcap) -> bool:
    """True for CUDA inputs that ``gpu_attention`` takes: two regions, the default causal mask and
    positions 0 .. nk-1 (queries last), no softcap, no gradients, a prefill (nq > 1), w >= 2."""
    if not (qs[0].is_cuda and len(thresholds) == 1 and thresholds[0] >= 2 and attn_mask is None and softcap is None):
        return False
    if qs[0].shape[2] < 2 or (torch.is_grad_enabled() and any(t.requires_grad for t in (qs[0], *ks, v))):
        return False
    return key_coords is None or _consecutive(query_coords, key_coords)


def region_attention(
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
    return_weights: bool = False,
    implementation: str = "auto",
):
    """One softmax over R position regions, each pair (i, j) taking the logit of its region.

    qs[r] [b, hq, nq, d] and ks[r] [b, hkv, nk, d] are q and k already rotated to region r's
    positions; v [b, hkv, nk, d]. The pair uses region  r = #{t in thresholds : u_i - u_j >= t}
    with u_i = ``query_coords`` ([nq] or [b, nq]) and u_j = ``key_coords`` ([nk] or [b, nk]).
    SelfExtend: two regions, u = position, thresholds (w,). ``attn_mask``, ``softcap``,
    ``return_weights`` and ``implementation`` as in ``merged_attention`` (the fast path is
    ``selfextend.fast_attention.fast_region_attention``).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {sorted(IMPLEMENTATIONS)}, got {implementation!r}")
    thresholds = as_thresholds(tuple(thresholds))
    if len(qs) != len(thresholds) + 1 or len(ks) != len(qs):
        raise ValueError(
            f"qs and ks must hold one tensor per region ({len(thresholds) + 1}), got {len(qs)} and {len(ks)}"
        )
    if (query_coords is None) != (key_coords is None):
        raise ValueError("query_positions and key_positions must both be tensors, or both None (0 .. nk-1)")
    nq, nk = qs[0].shape[-2], ks[0].shape[-2]
    if implementation == "fast" and return_weights:
        raise ValueError(
            'return_weights=True needs implementation="reference" or "auto"; the "fast" path never forms the weights'
        )
    if implementation == "auto":
        small = nq * nk < AUTO_FAST_MIN_PAIRS and nk < AUTO_FAST_MIN_KEYS
        implementation = "reference" if return_weights or nq == 0 or small else "fast"
    if implementation == "fast":
        if _gpu_route(qs, ks, v, query_coords, key_coords, thresholds, attn_mask, softcap):
            q_grouped = qs[1](0, nq) if callable(qs[1]) else qs[1]
            return gpu_merged_attention(qs[0], ks[0], q_grouped, ks[1], v, thresholds[0], scale=scale)
        if len(thresholds) == 1:  # two regions: SelfExtend's entry point (same kernel)
            return fast_merged_attention(
                qs[0], ks[0], qs[1], ks[1], v, query_coords, key_coords, thresholds[0],
                scale=scale, attn_mask=attn_mask, softcap=softcap,
            )
        return fast_region_attention(
            qs, ks, v, query_coords, key_coords, thresholds, scale=scale, attn_mask=attn_mask, softcap=softcap,
        )
    qs = [q(0, nq) if callable(q) else q for q in qs]  # lazily rotated grouped queries: the reference needs all
    if key_coords is None:  # the default positions: 0 .. nk-1, queries last
        query_coords, key_coords = default_positions(nq, nk, ks[0].device)
    n_rep = qs[0].shape[1] // ks[0].shape[1]
    if n_rep > 1:  # grouped-query attention: head h reads kv head h // n_rep
        ks = [repeat(t, "b h n d -> b (h r) n d", r=n_rep) for t in ks]
        v = repeat(v, "b h n d -> b (h r) n d", r=n_rep)
    compute = torch.float64 if v.dtype == torch.float64 else torch.float32
    region_logits = []
    for q, k in zip(qs, ks):
        x = torch.einsum("bhqd,bhkd->bhqk", q.to(compute), k.to(compute)) * scale
        region_logits.append(x if softcap is None else softcap * torch.tanh(x / softcap))

    distance = query_coords[..., :, None] - key_coords[..., None, :]  # [nq, nk] or [b, nq, nk]
    if distance.dim() == 3:
        distance = distance[:, None]
    logits = region_logits[0]
    for threshold, x in zip(thresholds, region_logits[1:]):
        logits = torch.where(distance >= threshold, x, logits)  # merge by replacement

    if attn_mask is None:
        attn_mask = queries_last_mask(nq, nk, logits.device)
    # A finite fill keeps a fully masked (padding) row finite instead of NaN.
    logits = logits.masked_fill(~attn_mask, torch.finfo(compute).min)
    weights = torch.softmax(logits, dim=-1)
    out = torch.einsum("bhqk,bhkd->bhqd", weights, v.to(compute)).to(v.dtype)
    return (out, weights) if return_weights else out


def self_extend_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    group_size: int,
    window: int,
    *,
    positions: torch.Tensor | None = None,
    rope_base: float = 10000.0,
    scale: float | None = None,
    return_weights: bool = False,
    implementation: str = "auto",
):
    """SelfExtend attention on un-rotated q [b, hq, nq, d], k, v [b, hkv, nk, d] -> [b, hq, nq, d].

    Keys j with i - j < window use ordinary RoPE positions; the others use query position
    i // g + (w - w // g) and key position j // g; one softmax over the merged logits.
    ``positions`` ([nk] or [b, nk], default 0..nk-1) are the key positions; queries take the last nq.
    ``return_weights=True`` also returns the probabilities [b, hq, nq, nk] (float32 for half inputs).
    ``implementation`` selects the kernel: "reference", "fast" (exact, O(nq + nk) memory, no weights)
    or "auto" (see ``merged_attention``).
    """
    validate_qkv(q, k, v)
    group_size = check_positive_int("group_size", group_size)
    window = check_positive_int("window", window)
    scale = resolve_scale(scale, q.shape[-1])
    k_pos = key_positions(positions, k)
    q_pos = k_pos[..., k.shape[2] - q.shape[2]:]
    q_group_pos, k_group_pos = grouped_positions(k_pos, group_size, window)
    q_group_pos = q_group_pos[..., k.shape[2] - q.shape[2]:]

    def grouped_queries(start: int, stop: int) -> torch.Tensor:  # the fast path rotates one block at a time
        return apply_rope(q[:, :, start:stop], q_group_pos[..., start:stop], rope_base)

    return merged_attention(
        apply_rope(q, q_pos, rope_base),
        apply_rope(k, k_pos, rope_base),
        grouped_queries,
        apply_rope(k, k_group_pos, rope_base),
        v,
        None if positions is None else q_pos,  # None: 0 .. nk-1, queries last (the kernel need not check)
        None if positions is None else k_pos,
        window,
        scale=scale,
        return_weights=return_weights,
        implementation=implementation,
    )


def rope_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    rope_base: float = 10000.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Plain causal RoPE attention (the baseline SelfExtend falls back to) through torch SDPA."""
    validate_qkv(q, k, v)
    scale = resolve_scale(scale, q.shape[-1])
    k_pos = key_positions(positions, k)
    q_pos = k_pos[..., k.shape[2] - q.shape[2]:]
    q_rot, k_rot = apply_rope(q, q_pos, rope_base), apply_rope(k, k_pos, rope_base)
    nq, nk = q.shape[2], k.shape[2]
    gqa = q.shape[1] != k.shape[1]
    if nq == nk:  # prefill: the fused causal kernel, no [nq, nk] mask in memory
        return F.scaled_dot_product_attention(q_rot, k_rot, v, is_causal=True, scale=scale, enable_gqa=gqa)
    mask = queries_last_mask(nq, nk, q.device)
    return F.scaled_dot_product_attention(q_rot, k_rot, v, attn_mask=mask, scale=scale, enable_gqa=gqa)
