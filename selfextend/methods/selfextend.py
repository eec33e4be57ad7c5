"""SelfExtend (Jin et al., ICML 2024, arXiv 2401.01325, Algorithm 1) and the official code's float variant.

    d < w:   i - j                                   (neighbor attention, region 0)
    d >= w:  (i // g + w - w // g) - j // g          (grouped attention, region 1)

"g_pos = pos // g_size; shift = w_size - w_size // g_size" (Algorithm 1).
The official repository's main Llama file (datamllab/LongLM, ``self_extend_patch/Llama.py``)
computes the shift as ``w - w / g``: when g does not divide w, its queries sit at fractional
positions (``SelfExtendFloat``). Its later ``Llama_4_40.py`` eager path uses ``//``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..positions import largest_relative_position
from ._validate import check_below_length, check_positive_int
from .base import PositionMap


@dataclass(frozen=True)
class SelfExtend(PositionMap):
    """SelfExtend(g, w): exact positions inside the neighbor window w, floor-divided ones beyond it."""

    group_size: int
    window: int
    pretrained_length: int | None = None  # if given, checks w < L

    name = "SelfExtend"

    def __post_init__(self):
        check_positive_int("group_size", self.group_size)
        check_positive_int("window", self.window)
        check_below_length("window", self.window, self.pretrained_length)

    def thresholds(self) -> tuple[int, ...]:
        return (self.window,)

    def shift(self):
        """w - w // g (Algorithm 1)."""
        return self.window - self.window // self.group_size

    def region_positions(self, positions):
        grouped = positions // self.group_size  # "the floor operation"
        return [(positions, positions), (grouped + self.shift(), grouped)]

    def largest_relative_position(self, seq_len: int) -> float:
        """(N - 1) // g + w - w // g once N > w, else N - 1."""
        return float(largest_relative_position(seq_len, self.group_size, self.window))

    @property
    def label(self) -> str:
        return f"SelfExtend g={self.group_size} w={self.window}"


@dataclass(frozen=True)
class SelfExtendFloat(SelfExtend):
    """SelfExtend with the official code's float shift w - w / g: fractional query positions when g does not divide w.

    N = 12, g = 3, w = 4, last query: 5.667 for the first keys, where Algorithm 1 gives 6.
    """

    name = "SelfExtend (float shift)"

    def shift(self):
        return self.window - self.window / self.group_size

    def region_positions(self, positions):
        grouped = positions // self.group_size
        return [(positions, positions), (grouped.to(torch.float64) + self.shift(), grouped)]

    def largest_relative_position(self, seq_len: int) -> float:
        """(N - 1) // g + w - w / g once N > w, else N - 1."""
        seq_len = check_positive_int("seq_len", seq_len)
        return float(seq_len - 1) if seq_len <= self.window else (seq_len - 1) // self.group_size + self.shift()

    @property
    def label(self) -> str:
        return f"SelfExtend float g={self.group_size} w={self.window}"
