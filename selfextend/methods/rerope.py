"""ReRoPE and Leaky ReRoPE (Su, 2023, "Rectified Rotary Position Embeddings", bojone/rerope).

    ReRoPE        min(d, w):               d < w: d;   d >= w: w
    Leaky ReRoPE  d < w: d;   d >= w: w + (d - w) / k          (k > 1, fractional positions)

Both are separable: ReRoPE's far region rotates the query to position w and leaves the key at 0;
Leaky ReRoPE rotates the query to w + (i - w) / k and the key to j / k. Reference code
(``rerope_patch.py``, ``leaky_rerope_patch.py``): window 512 for a 4096 training length, leak
``scaling_factor`` k = 16; the README's runs use window 1024. The reference code also offers a
log-n query scale max(1, log(i + 1) / log L), left out here (positions only).
With a floor on both far positions (i // k + w - w // k and j // k), Leaky ReRoPE is SelfExtend.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._validate import check_below_length, check_number_above, check_positive_int
from .base import PositionMap, _full


@dataclass(frozen=True)
class ReRoPE(PositionMap):
    """ReRoPE(w): relative position min(d, w)."""

    window: int
    pretrained_length: int | None = None  # if given, checks w < L

    name = "ReRoPE"

    def __post_init__(self):
        check_positive_int("window", self.window)
        check_below_length("window", self.window, self.pretrained_length)

    def thresholds(self):
        return (self.window,)

    def region_positions(self, positions):
        return [(positions, positions), (_full(positions, self.window), _full(positions, 0))]

    def largest_relative_position(self, seq_len: int) -> float:
        """min(N - 1, w)."""
        return float(min(check_positive_int("seq_len", seq_len) - 1, self.window))

    @property
    def label(self):
        return f"ReRoPE w={self.window}"


@dataclass(frozen=True)
class LeakyReRoPE(PositionMap):
    """Leaky ReRoPE(w, k): d inside the window, w + (d - w) / k beyond it; ``floor=True`` floors both far positions."""

    window: int
    leak: float = 16.0  # k, the reference code's scaling_factor
    pretrained_length: int | None = None
    floor: bool = False

    name = "Leaky ReRoPE"

    def __post_init__(self):
        check_positive_int("window", self.window)
        check_number_above("leak", self.leak, 1)
        check_below_length("window", self.window, self.pretrained_length)
        if self.floor and float(self.leak) != int(self.leak):
            raise ValueError(f"leak must be an integer > 1 when floor=True, got {self.leak!r}")

    def thresholds(self):
        return (self.window,)

    def region_positions(self, positions):
        w, k = self.window, self.leak
        if self.floor:
            k = int(k)
            return [(positions, positions), (positions // k + (w - w // k), positions // k)]
        p = positions.double()
        return [(positions, positions), (w + (p - w) / k, p / k)]

    def largest_relative_position(self, seq_len: int) -> float:
        """N - 1 up to N = w, then w + (N - 1 - w) / k."""
        n = check_positive_int("seq_len", seq_len)
        if n <= self.window or self.floor:
            return super().largest_relative_position(n) if self.floor else float(n - 1)
        return self.window + (n - 1 - self.window) / self.leak

    @property
    def label(self):
        return f"Leaky ReRoPE w={self.window} k={self.leak:g}" + (" floor" if self.floor else "")
