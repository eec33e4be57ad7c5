"""Grouped attention alone (Jin et al., 2024, Sec. 3 and Fig. 2): every position floor-divided by g.

    (i, j) -> i // g - j // g          (queries and keys alike, no neighbor window)

"g_pos = pos // g_size  # the floor operation" (Algorithm 1), used for every pair. The largest
relative position of N tokens is (N - 1) // g, so it stays below a pretrained length L up to
N = g * L; the price is that neighbouring tokens share a position (distance 0 within a group), which
is why SelfExtend keeps exact positions inside its neighbor window.

The method has one region. The shared kernel merges at least two, so the pair's own diagonal
(d = 0) is region 0 and every other pair region 1, both with the same positions p // g.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._validate import check_positive_int
from .base import PositionMap


@dataclass(frozen=True)
class Grouped(PositionMap):
    """Grouped(g): position p // g for every query and key, one causal softmax (the paper's Fig. 2)."""

    group_size: int  # g

    name = "grouped attention"

    def __post_init__(self):
        check_positive_int("group_size", self.group_size)

    def thresholds(self) -> tuple[int, ...]:
        return (1,)  # a formal split only: both regions use the same positions

    def region_positions(self, positions):
        grouped = positions // self.group_size  # "the floor operation"
        return [(grouped, grouped), (grouped, grouped)]

    def largest_relative_position(self, seq_len: int) -> float:
        """(N - 1) // g: below L up to N = g * L."""
        return float((check_positive_int("seq_len", seq_len) - 1) // self.group_size)

    def reach(self, pretrained_length: int) -> int:
        """g * L: the longest input whose relative positions all stay below L."""
        return self.group_size * check_positive_int("pretrained_length", pretrained_length)

    @property
    def label(self) -> str:
        return f"grouped only (p // {self.group_size})"
