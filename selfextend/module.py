"""SelfExtendAttn: a drop-in nn.Module with the old ``se_attn`` constructor and call, done right."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ._checks import check_float_tensor, check_positions, check_positive_int
from .attention import self_extend_attention


class SelfExtendAttn(nn.Module):
    """Multi-head SelfExtend attention on [batch, seq, dim] tensors (no projections, like ``se_attn``).

    Each of ``heads`` heads (head_dim = dim / heads) is rotated with RoPE, scaled by 1/sqrt(head_dim)
    and attends causally with the SelfExtend rule (group size ``g_size``, neighbor window ``w_size``).
    ``qk_norm=True`` adds a LayerNorm over head_dim to q and k before RoPE.
    """

    def __init__(
        self, dim: int, g_size: int, w_size: int, qk_norm: bool = False, heads: int = 1, rope_base: float = 10000.0
    ):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.group_size = check_positive_int("g_size", g_size)
        self.window = check_positive_int("w_size", w_size)
        self.heads = check_positive_int("heads", heads)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.head_dim = dim // heads
        if self.head_dim % 2:
            raise ValueError(f"head_dim = dim / heads must be even for RoPE, got {self.head_dim}")
        if not rope_base > 0:
            raise ValueError(f"rope_base must be > 0, got {rope_base!r}")
        self.rope_base = float(rope_base)
        self.qk_norm = bool(qk_norm)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor | None = None
    ) -> torch.Tensor:
        """q [b, nq, dim], k and v [b, nk, dim], pos [nk] or [b, nk] (default 0..nk-1) -> [b, nq, dim]."""
        for name, tensor in (("q", q), ("k", k), ("v", v)):
            check_float_tensor(name, tensor, ndim=3)
            if tensor.shape[-1] != self.dim:
                raise ValueError(f"{name} must have last dimension dim={self.dim}, got {tuple(tensor.shape)}")
        if pos is not None:
            pos = check_positions("pos", pos, k.shape[1], k.shape[0])
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        q, k = self.q_norm(q), self.k_norm(k)
        out = self_extend_attention(
            q, k, v, self.group_size, self.window, positions=pos, rope_base=self.rope_base
        )
        return rearrange(out, "b h n d -> b n (h d)")

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, g_size={self.group_size}, w_size={self.window}, heads={self.heads}, "
            f"qk_norm={self.qk_norm}, rope_base={self.rope_base}"
        )
