"""SELF: SelfExtend with group sizes that grow logistically (arXiv 2505.17296; alexeipc/SELF-LLM).

Group x (x = 0, 1, 2, ...) has size  s_x = floor(C / (1 + (C - 1) e^(-r x))):  1 at first, rising
to C - 1. Positions are packed into these groups from position 0 on; G(p) is the group of p.

    d < w:   i - j
    d >= w:  (w + G(i - w)) - G(j)

With a constant size g, G(p) = p // g and this is SelfExtend (up to the shift when g does not
divide w). The reference code (CUDA ``logistic.cu``) computes G from the inverse of the logistic
curve and puts the query at w + G(i - w), as here; its decode path (``logistic_qlen_1.cu``)
numbers the groups from a different origin, so decoding and prefill see different positions.
The paper describes the sizes as growing with distance; in the code (and here) they grow with
the group index, counted from the start of the sequence. Defaults: r = 0.02, C = 16, w = 512
(for Llama-2, L = 4096).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validate import check_below_length, check_number_above, check_positive_int
from .base import PositionMap


def logistic_group_sizes(count: int, capacity: float, rate: float) -> torch.Tensor:
    """Long [count]: s_x = floor(C / (1 + (C - 1) e^(-r x))) for x = 0 .. count - 1 (float64 maths)."""
    x = torch.arange(count, dtype=torch.float64)
    sizes = torch.floor(capacity / (1 + (capacity - 1) * torch.exp(-rate * x)))
    return sizes.clamp(min=1).long()


@dataclass(frozen=True)
class SELF(PositionMap):
    """SELF(C, r, w): SelfExtend whose group sizes grow logistically from 1 to C - 1."""

    capacity: float = 16.0  # C, the reference code's group_size
    rate: float = 0.02  # r
    window: int = 512
    pretrained_length: int | None = None

    name = "SELF"

    def __post_init__(self):
        check_number_above("capacity", self.capacity, 1)
        check_number_above("rate", self.rate, 0)
        check_positive_int("window", self.window)
        check_below_length("window", self.window, self.pretrained_length)

    def group_index(self, positions: torch.Tensor) -> torch.Tensor:
        """G(p): the group that position p >= 0 falls in (groups of logistic sizes from 0 on)."""
        top = int(positions.max()) if positions.numel() else 0
        ends = logistic_group_sizes(top + 1, self.capacity, self.rate).cumsum(0)  # group x ends before ends[x]
        return torch.searchsorted(ends.to(positions.device), positions.long(), right=True)

    def thresholds(self):
        return (self.window,)

    def region_positions(self, positions):
        far_query = self.window + self.group_index((positions - self.window).clamp(min=0))
        return [(positions, positions), (far_query, self.group_index(positions.clamp(min=0)))]

    def largest_relative_position(self, seq_len: int) -> float:
        """w + G(N - 1 - w) once N > w (the last query to key 0), else N - 1. No closed form."""
        n = check_positive_int("seq_len", seq_len)
        if n <= self.window:
            return float(n - 1)
        return float(self.window + int(self.group_index(torch.tensor([n - 1 - self.window]))[0]))

    @property
    def label(self):
        return f"SELF C={self.capacity:g} r={self.rate:g} w={self.window}"
