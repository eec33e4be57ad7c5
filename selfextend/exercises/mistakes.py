"""The usual mistakes, written out so a check can recognise them by their output.

Each function is a *wrong* version of something the package does right; the exercises compare a
learner's output with these to say what went wrong, not only that something did.
"""
from __future__ import annotations

import math

import torch

from ..rope import inverse_frequencies, rotate_pairs


def algorithm1(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group_size: int, window: int, *,
               scaled: bool = True, strict: bool = False, shift: str = "int") -> torch.Tensor:
    """Algorithm 1 on q, k, v [b, h, n, d], with one chosen mistake (the defaults are the right rule).

    scaled=False forgets 1/sqrt(d); strict=True groups at i - j > w instead of >= w;
    shift="float" uses w - w/g (fractional positions), shift="none" forgets the shift.
    """
    n, d = q.shape[-2], q.shape[-1]
    pos = torch.arange(n)
    frequencies = inverse_frequencies(d)
    offset = {"int": window - window // group_size, "float": window - window / group_size, "none": 0}[shift]
    g_pos = pos // group_size
    rot = lambda x, p: rotate_pairs(x, torch.as_tensor(p, dtype=torch.float64), frequencies)
    scale = 1 / math.sqrt(d) if scaled else 1.0
    neighbor = rot(q, pos) @ rot(k, pos).transpose(-1, -2) * scale
    grouped = rot(q, g_pos + offset) @ rot(k, g_pos).transpose(-1, -2) * scale
    distance = pos[:, None] - pos[None, :]
    use_grouped = distance > window if strict else distance >= window
    logits = torch.where(use_grouped, grouped, neighbor).masked_fill(distance < 0, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


def reach_without_window(pretrained_length: int, group_size: int, window: int) -> int:
    """Eq. 4 misread as L * g (forgetting that the window keeps w positions)."""
    return pretrained_length * group_size


def floor_group_size(pretrained_length: int, target_length: int, window: int) -> int:
    """The inverse of Eq. 4 rounded down instead of up."""
    return max(1, (target_length - window) // (pretrained_length - window))


def group_size_without_window(pretrained_length: int, target_length: int, window: int) -> int:
    """The inverse of L * g >= N (the window forgotten)."""
    return max(1, math.ceil(target_length / pretrained_length))
