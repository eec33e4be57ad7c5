"""Dual Chunk Attention, ChunkLlama (An et al., 2024, arXiv 2402.17463; HKUNLP/ChunkLlama).

The sequence is cut into chunks of s tokens. Every key sits at  j mod s.  The query's position
depends on how many chunks lie between them (region = chunk(i) - chunk(j), chunk(p) = p // s):

    same chunk (intra):        i mod s                          ->  d
    next chunk (successive):   min(s + i mod s, s + w - 1)      ->  exact for d < w
    further (inter):           s + w - 1  (the ceiling c - 1)

Paper: chunk size s = 3/4 c and local window w = c - s for a pretrained length c, so the largest
position is c - 1. The reference code (``chunkllama_attn_replace.py``) departs from this: it uses
chunk_size = 3L/4 with local_window = L/8 (so chunk_size - local_window = 5L/8), puts the ceiling
at chunk_size rather than c - 1, and beyond L scales cos/sin by 0.05 ln(n / L) + 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_positive_int
from .base import PositionMap, _full


@dataclass(frozen=True)
class DualChunk(PositionMap):
    """DualChunk(s, w, c): intra-, successive- and inter-chunk positions (three regions)."""

    chunk_size: int  # s
    local_window: int  # w
    pretrained_length: int  # c

    name = "DCA"

    def __post_init__(self):
        c = check_positive_int("pretrained_length", self.pretrained_length)
        s = check_positive_int("chunk_size", self.chunk_size)
        w = check_positive_int("local_window", self.local_window)
        if s <= w:
            raise ValueError(f"chunk_size must be > local_window ({w}), got {s}")
        if s + w > c:
            raise ValueError(f"local_window must be in [1, pretrained_length - chunk_size] = [1, {c - s}], got {w}")

    def coordinates(self, positions):
        return positions // self.chunk_size

    def thresholds(self):
        return (1, 2)  # next chunk, then further

    def region_positions(self, positions):
        s, ceiling = self.chunk_size, self.chunk_size + self.local_window - 1
        key = positions % s
        successive = torch.clamp(key + s, max=ceiling)
        return [(key, key), (successive, key), (_full(positions, ceiling), key)]

    def largest_relative_position(self, seq_len: int) -> float:
        """min(N - 1, s + w - 1)  (= c - 1 with the paper's w = c - s)."""
        return float(min(check_positive_int("seq_len", seq_len) - 1, self.chunk_size + self.local_window - 1))

    @property
    def label(self):
        return f"DCA s={self.chunk_size} w={self.local_window}"
