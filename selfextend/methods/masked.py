"""Methods that drop keys, run as masks over the same kernel: LM-Infinite, StreamingLLM, sliding window.

LM-Infinite (Han et al., 2023, arXiv 2308.16137; Glaciohound/LM-Infinite, ``lambda_attention.py``):
a Λ-shaped mask. Query i attends the keys of its local window j >= i - n_local + 1 at distance d,
and the first n_global tokens with the distance capped: min(d, L). Defaults n_local = L,
n_global = 10-100. The cap is separable: the far region rotates the query to L and the key to 0.
(The cap L is itself one past the largest trained distance L - 1, as in the paper's rule.)

StreamingLLM (Xiao et al., 2023, arXiv 2309.17453; mit-han-lab/streaming-llm,
``kv_cache.py`` StartRecentKVCache, ``pos_shift/modify_llama.py``): the cache keeps S "attention
sink" tokens and the R most recent ones, and positions are taken *in the cache*: a recent key keeps
its distance d, sink s is at distance (S + R - 1) - s once the cache is full. Evaluated token by
token this equals one masked softmax per row (every token is computed once, with the cache of its
own step; its stored key is re-rotated to its cache slot), which is what runs here.
Defaults S = 4, R = 2000 (L = 4096).

Sliding-window attention (Mistral 7B, Jiang et al., 2023, arXiv 2310.06825, Sec. 2: "each token can
attend to at most W tokens from the previous layer", W = 4096): query i attends keys
0 <= i - j < W at their ordinary distances. It is LM-Infinite(L, n_local=W, n_global=0) for any
L >= W, and SelfExtend's neighbor band with the grouped part dropped. The fast exact kernel without a
mask is ``selfextend.fast_attention.sliding_window_attention``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_non_negative_int, check_positive_int
from .base import PositionMap, _full


@dataclass(frozen=True)
class LMInfinite(PositionMap):
    """LM-Infinite(L, n_local, n_global): a local window plus the first tokens, distances capped at L."""

    pretrained_length: int  # L
    n_local: int | None = None  # default L
    n_global: int = 10

    name = "LM-Infinite"

    def __post_init__(self):
        L = check_positive_int("pretrained_length", self.pretrained_length)
        check_non_negative_int("n_global", self.n_global)
        if self.n_local is not None:
            n_local = check_positive_int("n_local", self.n_local)
            if n_local > L:
                raise ValueError(f"n_local must be in [1, pretrained_length] = [1, {L}], got {n_local}")

    @property
    def local(self) -> int:
        return self.pretrained_length if self.n_local is None else self.n_local

    def thresholds(self):
        return (self.pretrained_length,)

    def region_positions(self, positions):
        return [(positions, positions), (_full(positions, self.pretrained_length), _full(positions, 0))]

    def allowed(self, query, key):
        return (query - key < self.local) | (key < self.n_global)

    def largest_relative_position(self, seq_len: int) -> float:
        """min(N - 1, L) with global tokens; min(N, n_local) - 1 without."""
        n = check_positive_int("seq_len", seq_len)
        if self.n_global == 0:
            return float(min(n, self.local) - 1)
        return float(min(n - 1, self.pretrained_length))

    @property
    def label(self):
        return f"LM-Infinite local={self.local} global={self.n_global}"


@dataclass(frozen=True)
class StreamingLLM(PositionMap):
    """StreamingLLM(S, R): S attention sinks plus the R most recent tokens, positions in the cache."""

    n_sink: int = 4  # S
    n_recent: int = 2000  # R (the query itself included)
    pretrained_length: int | None = None  # if given, checks S + R <= L

    name = "StreamingLLM"

    def __post_init__(self):
        check_non_negative_int("n_sink", self.n_sink)
        check_positive_int("n_recent", self.n_recent)
        if self.pretrained_length is not None:
            L = check_positive_int("pretrained_length", self.pretrained_length)
            if self.n_sink + self.n_recent > L:
                raise ValueError(
                    f"n_recent must be in [1, pretrained_length - n_sink] = [1, {L - self.n_sink}] "
                    f"(the cache must fit the pretrained length), got {self.n_recent}"
                )

    def thresholds(self):
        return (self.n_recent,)

    def region_positions(self, positions):
        cache_last = self.n_sink + self.n_recent - 1  # the query's slot once the cache is full
        return [(positions, positions), (torch.clamp(positions, max=cache_last), positions)]

    def allowed(self, query, key):
        return (query - key < self.n_recent) | (key < self.n_sink)

    def largest_relative_position(self, seq_len: int) -> float:
        """min(N, S + R) - 1 with sinks; min(N, R) - 1 without."""
        n = check_positive_int("seq_len", seq_len)
        return float(min(n, self.n_sink + self.n_recent if self.n_sink else self.n_recent) - 1)

    @property
    def label(self):
        return f"StreamingLLM sinks={self.n_sink} recent={self.n_recent}"


@dataclass(frozen=True)
class SlidingWindow(PositionMap):
    """SlidingWindow(W): each query attends its W most recent keys (itself included), positions unchanged."""

    window: int  # W

    name = "Sliding window"

    def __post_init__(self):
        check_positive_int("window", self.window)

    def thresholds(self):
        # As LM-Infinite: a far region (distance >= W) whose keys the mask drops; its positions never count.
        return (self.window,)

    def region_positions(self, positions):
        return [(positions, positions), (positions, positions)]

    def allowed(self, query, key):
        return query - key < self.window

    def largest_relative_position(self, seq_len: int) -> float:
        """min(N, W) - 1."""
        n = check_positive_int("seq_len", seq_len)
        return float(min(n, self.window) - 1)

    @property
    def label(self):
        return f"Sliding window W={self.window}"
