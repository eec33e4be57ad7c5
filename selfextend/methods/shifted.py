"""STRING: ShifTed Rotary position embeddING (An et al., 2024, arXiv 2410.18745; HKUNLP/STRING).

    d <= S:  d
    d >  S:  d - S + W          (far keys reuse the well-trained small positions, shifted by S - W)

The query of the far region sits at i - S + W, the key at j. Defaults: offset S = L/3 (0.25-0.4 L),
local window W = 128 (Llama, L = 4096). STRING re-uses positions inside the pretrained length; it
does not compress them, so inputs longer than L + S - W still meet unseen positions.
The reference code (``string_for_llama.py``) also scales cos/sin by 1 + 0.1 ln 2, and counts
the key at distance exactly S in both of its flash-attention calls.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._validate import check_below_length, check_positive_int
from .base import PositionMap


@dataclass(frozen=True)
class STRING(PositionMap):
    """STRING(S, W): d up to the offset S, then d - S + W."""

    offset: int  # S
    local_window: int = 128  # W
    pretrained_length: int | None = None  # if given, checks S < L

    name = "STRING"

    def __post_init__(self):
        check_positive_int("offset", self.offset)
        check_positive_int("local_window", self.local_window)
        if self.local_window >= self.offset:
            raise ValueError(f"local_window must be in [1, offset - 1] = [1, {self.offset - 1}], got {self.local_window}")
        check_below_length("offset", self.offset, self.pretrained_length)

    def thresholds(self):
        return (self.offset + 1,)  # d > S

    def region_positions(self, positions):
        return [(positions, positions), (positions - self.offset + self.local_window, positions)]

    def largest_relative_position(self, seq_len: int) -> float:
        """N - 1 up to N - 1 = S, then max(S, N - 1 - S + W)."""
        n = check_positive_int("seq_len", seq_len)
        return float(n - 1 if n - 1 <= self.offset else max(self.offset, n - 1 - self.offset + self.local_window))

    @property
    def label(self):
        return f"STRING S={self.offset} W={self.local_window}"
