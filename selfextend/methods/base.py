"""The common form of every method: regions chosen by distance, each a RoPE position for q and for k.

A method maps the pair (query i, key j) to a relative position. For all of them it is one of a few
*regions*, chosen by  r = #{t in thresholds : u(i) - u(j) >= t}  (u(p) = p, or the chunk index
p // s for Dual Chunk Attention; a query may have a coordinate of its own, as llama.cpp's count of
compressed tokens), and inside region r it is  a_r(i) - b_r(j):  q is rotated to
a_r(i) and k to b_r(j), so every region costs one ordinary RoPE attention. A constant far distance
is separable too: ReRoPE's  min(d, w)  puts the query at w and the key at 0. Fractional positions
(Leaky ReRoPE, float-division SelfExtend) are fine: RoPE turns by any real angle.
Methods that drop keys (LM-Infinite's Λ mask, StreamingLLM's eviction) add a mask.
"""
from __future__ import annotations

import torch

from ..attention import key_positions, queries_last_mask, region_attention, resolve_scale, validate_qkv
from ..rope import inverse_frequencies, rotate_pairs


class PositionMap:
    """Base class: subclasses give ``thresholds``, ``region_positions`` and, if they drop keys, ``allowed``."""

    name = "position map"

    def thresholds(self) -> tuple[int, ...]:
        """Region boundaries t_1 < t_2 < ...: the pair is in region #{t : u(i) - u(j) >= t}."""
        raise NotImplementedError

    def coordinates(self, positions: torch.Tensor) -> torch.Tensor:
        """u(p), the coordinate regions are chosen by (default: the position itself)."""
        return positions

    def query_coordinates(self, positions: torch.Tensor) -> torch.Tensor:
        """u(i) of a query at position i (default: ``coordinates``, the same as a key's)."""
        return self.coordinates(positions)

    def region_positions(self, positions: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per region, (query position a_r(p), key position b_r(p)) for long positions p [..., n]."""
        raise NotImplementedError

    def allowed(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor | None:
        """Bool, True where query position i may attend key position j (besides j <= i); None = all."""
        return None

    def largest_relative_position(self, seq_len: int) -> float:
        """The largest relative position a sequence of seq_len tokens uses (the analogue of Eq. 4)."""
        values, _, attended = position_map(self, seq_len)
        return float(values[attended].max())

    @property
    def label(self) -> str:
        """A short name with the parameters, for legends and tables."""
        return self.name


def _full(positions: torch.Tensor, value: float) -> torch.Tensor:
    """A constant position for every entry of ``positions`` (float64)."""
    return torch.full(positions.shape, float(value), dtype=torch.float64, device=positions.device)


def position_map(method: PositionMap, q_len: int, k_len: int | None = None):
    """(values float64, regions long, attended bool), each [q_len, k_len]: the method's relative positions.

    Queries are the last q_len of k_len positions 0 .. k_len - 1. ``values`` is a_r(i) - b_r(j) of
    the pair's region r; ``attended`` is False for future keys and keys the method drops.
    """
    k_len = q_len if k_len is None else k_len
    causal = queries_last_mask(q_len, k_len)
    key = torch.arange(k_len)
    query = key[k_len - q_len:]
    u = method.coordinates(key)
    distance = method.query_coordinates(query)[:, None] - u[None, :]
    regions = torch.zeros(q_len, k_len, dtype=torch.long)
    for t in method.thresholds():
        regions += (distance >= t).long()
    values = torch.zeros(q_len, k_len, dtype=torch.float64)
    for r, (a, b) in enumerate(method.region_positions(key)):
        rel = a.to(torch.float64)[k_len - q_len:, None] - b.to(torch.float64)[None, :]
        values = torch.where(regions == r, rel, values)
    extra = method.allowed(query[:, None], key[None, :])
    attended = causal if extra is None else causal & extra
    return values, regions, attended


def attention(
    method: PositionMap,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    rope_base: float = 10000.0,
    scale: float | None = None,
    return_weights: bool = False,
    implementation: str = "auto",
):
    """The method's exact attention on un-rotated q [b, hq, nq, d], k, v [b, hkv, nk, d] -> [b, hq, nq, d].

    One kernel for all (``selfextend.attention.region_attention``): each region rotates q and k to
    its own positions; one softmax over the merged logits; a method that drops keys passes its mask.
    ``positions`` ([nk] or [b, nk], default 0 .. nk-1) are the key positions; queries take the last nq.
    """
    validate_qkv(q, k, v)
    scale = resolve_scale(scale, q.shape[-1])
    nq, nk = q.shape[2], k.shape[2]
    k_pos = key_positions(positions, k)
    q_pos = k_pos[..., nk - nq:]
    theta = inverse_frequencies(q.shape[-1], rope_base)
    qs, ks = [], []
    for a, b in method.region_positions(k_pos):
        qs.append(rotate_pairs(q, a[..., nk - nq:], theta))
        ks.append(rotate_pairs(k, b, theta))
    u = method.coordinates(k_pos)
    u_query = method.query_coordinates(q_pos)
    attn_mask = None
    extra = method.allowed(q_pos[..., :, None], k_pos[..., None, :])
    if extra is not None:  # [nq, nk] or [b, nq, nk] -> broadcastable to [b, h, nq, nk]
        extra = extra if extra.dim() == 2 else extra[:, None]
        attn_mask = queries_last_mask(nq, nk, q.device) & extra
    return region_attention(
        qs, ks, v, u_query, u, method.thresholds(), scale=scale, attn_mask=attn_mask,
        return_weights=return_weights, implementation=implementation,
    )
