"""Input checks shared by the public functions: each raises ValueError naming the parameter."""
from __future__ import annotations

import numbers

import torch


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def check_non_negative_int(name: str, value) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0), got {value!r}")
    return int(value)


def check_float_tensor(name: str, tensor, ndim: int | None = None) -> torch.Tensor:
    """Raise unless ``tensor`` is a floating-point tensor (of ``ndim`` dimensions, if given)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ValueError(
            f"{name} must have a floating-point dtype (float32, float16, bfloat16 or float64), "
            f"got {tensor.dtype}"
        )
    if ndim is not None and tensor.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(tensor.shape)}")
    return tensor


def check_positions(name: str, positions, seq_len: int, batch: int | None = None) -> torch.Tensor:
    """Raise unless ``positions`` is an integer tensor of shape [seq_len] or [batch, seq_len]."""
    if not isinstance(positions, torch.Tensor):
        raise ValueError(f"{name} must be an integer torch.Tensor, got {type(positions).__name__}")
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype (e.g. torch.long), got {positions.dtype}")
    allowed = f"[{seq_len}]" if batch is None else f"[{seq_len}] or [{batch}, {seq_len}]"
    if positions.dim() == 1:
        ok = positions.shape[0] == seq_len
    elif positions.dim() == 2 and batch is not None:
        ok = positions.shape[1] == seq_len and positions.shape[0] in (1, batch)
    else:
        ok = False
    if not ok:
        raise ValueError(f"{name} must have shape {allowed}, got {tuple(positions.shape)}")
    return positions.long()
