"""Rotary position embedding (RoPE), Llama / Hugging Face layout.

Each head vector x of size d is split into halves x = [x1, x2]; pair k is (x1[k], x2[k]) and is
rotated by the angle  p * theta_k  with  theta_k = base ** (-2k / d)  (Su et al., RoFormer):

    rope(x, p) = x * cos(p * theta) + rotate_half(x) * sin(p * theta),  rotate_half([x1, x2]) = [-x2, x1]

Because rotations compose, <rope(q, i), rope(k, j)> depends on i and j only through i - j.
"""
from __future__ import annotations

import torch

from ._checks import check_float_tensor, check_positions


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """[x1, x2] -> [-x2, x1] over the last dimension (the 90-degree turn of every pair)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def inverse_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """theta_k = base ** (-2k / head_dim) for k = 0 .. head_dim/2 - 1, in float64."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    if not base > 0:
        raise ValueError(f"rope_base must be > 0, got {base!r}")
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim
    return base ** (-exponents)


def rotate_pairs(x: torch.Tensor, positions: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """Turn pair k of x [..., seq, d] by the angle p * frequencies[k] (len(frequencies) = d / 2).

    positions: [seq], or [batch, seq] for x [batch, heads, seq, d]. The angles are formed in float64
    (at p ~ 1e5 a float32 product loses about 1e-2 rad); half-precision x is turned in float32 and
    returned in its own dtype. The same as  x * cos + rotate_half(x) * sin,  without building
    rotate_half(x). Any frequencies work: RoPE's, or scaled ones (PI, NTK, YaRN, a model's inv_freq).
    """
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    angles = positions.to(torch.float64)[..., None] * frequencies.to(device=x.device, dtype=torch.float64)
    cos, sin = angles.cos().to(compute_dtype), angles.sin().to(compute_dtype)
    if positions.dim() == 2:  # [batch, seq, d/2] -> [batch, 1, seq, d/2] to broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    return turn_pairs(x, cos, sin)


def turn_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """[x1 cos - x2 sin, x2 cos + x1 sin] for x = [x1, x2] [..., d] and cos, sin [..., d/2] (broadcasting).

    Computed in cos's dtype and returned in x's. Written into one output tensor with one half-size
    scratch: the same roundings as the textbook expression, without its five full-size temporaries.
    ``out`` (x's shape, cos's dtype, e.g. rows of a cache buffer) receives the result in place.
    """
    x1, x2 = x.to(cos.dtype).chunk(2, dim=-1)
    if torch.is_grad_enabled() and (x.requires_grad or cos.requires_grad or sin.requires_grad):
        turned = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)  # autograd: ops without out=
        return turned.to(x.dtype) if out is None else out.copy_(turned)
    shape = torch.broadcast_shapes(x.shape, (*cos.shape[:-1], x.shape[-1]))
    if out is None:
        out = torch.empty(shape, dtype=cos.dtype, device=x.device)
    elif out.shape != shape or out.dtype != cos.dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype {cos.dtype}, got {tuple(out.shape)}, {out.dtype}")
    first, second = out.chunk(2, dim=-1)
    scratch = torch.mul(x2, sin)
    torch.mul(x1, cos, out=first).sub_(scratch)  # x1 cos - x2 sin
    torch.mul(x1, sin, out=scratch)
    torch.mul(x2, cos, out=second).add_(scratch)  # x2 cos + x1 sin
    return out.to(x.dtype)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of p * theta, shape [*positions.shape, head_dim], in ``dtype``.

    The angles are formed in float64: at p ~ 1e5 a float32 product loses about 1e-2 rad.
    Both halves of a pair share one angle, so the two halves of the last dimension are equal.
    """
    angles = positions.to(torch.float64)[..., None] * inverse_frequencies(head_dim, base).to(positions.device)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate x [batch, heads, seq, head_dim] (or [seq, head_dim]) to ``positions`` [seq] or [batch, seq].

    Half-precision inputs are rotated in float32 and returned in their own dtype.
    """
    check_float_tensor("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must have shape [..., seq, head_dim], got {tuple(x.shape)}")
    head_dim, seq = x.shape[-1], x.shape[-2]
    if head_dim % 2:
        raise ValueError(f"head_dim (last dimension of x) must be even for RoPE, got {head_dim}")
    batch = x.shape[0] if x.dim() == 4 else None
    positions = check_positions("positions", positions, seq, batch)
    return rotate_pairs(x, positions.to(x.device), inverse_frequencies(head_dim, base))
