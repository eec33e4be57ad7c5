"""Relative-position maps of SelfExtend (Jin et al., 2024, Sec. 3 and Figure 3).

Rows are queries i, columns keys j. When q_len < k_len the queries are the *last* q_len
positions (decoding with a cache): query row r sits at position k_len - q_len + r.
Entries with j > i are future keys; they are masked by the causal mask and carry no meaning.

    normal   P[i, j] = i - j
    grouped  G[i, j] = (i // g + (w - w // g)) - j // g      ("the floor operation", then the shift)
    merged   M[i, j] = P[i, j]  if i - j < w  else  G[i, j]  (neighbor window, then grouped attention)
"""
from __future__ import annotations

import math

import torch

from ._checks import check_positive_int


def _query_key_positions(q_len: int, k_len: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute positions of the queries ([q_len, 1]) and keys ([1, k_len])."""
    q_len = check_positive_int("q_len", q_len)
    k_len = q_len if k_len is None else check_positive_int("k_len", k_len)
    if q_len > k_len:
        raise ValueError(f"q_len must be <= k_len (queries are the last positions), got {q_len} > {k_len}")
    query = torch.arange(k_len - q_len, k_len)[:, None]
    key = torch.arange(k_len)[None, :]
    return query, key


def group_shift(group_size: int, window: int) -> int:
    """The shift w - w // g added to grouped query positions (Algorithm 1)."""
    group_size = check_positive_int("group_size", group_size)
    window = check_positive_int("window", window)
    return window - window // group_size


def causal_mask(q_len: int, k_len: int | None = None) -> torch.Tensor:
    """Bool [q_len, k_len]: True where key j <= query i (may be attended)."""
    query, key = _query_key_positions(q_len, k_len)
    return key <= query


def normal_relative_positions(q_len: int, k_len: int | None = None) -> torch.Tensor:
    """Long [q_len, k_len]: i - j, the distances plain RoPE attention sees."""
    query, key = _query_key_positions(q_len, k_len)
    return query - key


def grouped_relative_positions(
    q_len: int, k_len: int | None = None, group_size: int = 1, window: int | None = None
) -> torch.Tensor:
    """Long [q_len, k_len]: i//g - j//g, plus the shift w - w//g when ``window`` is given."""
    group_size = check_positive_int("group_size", group_size)
    shift = 0 if window is None else group_shift(group_size, window)
    query, key = _query_key_positions(q_len, k_len)
    return (query // group_size + shift) - key // group_size


def grouped_attention_mask(q_len: int, k_len: int | None = None, window: int = 1) -> torch.Tensor:
    """Bool [q_len, k_len]: True where the grouped logit replaces the neighbor one (i - j >= w)."""
    window = check_positive_int("window", window)
    return normal_relative_positions(q_len, k_len) >= window


def merged_relative_positions(q_len: int, k_len: int | None, group_size: int, window: int) -> torch.Tensor:
    """Long [q_len, k_len]: the SelfExtend map, i - j inside the window, shifted grouped outside.

    For 10 tokens, g = 2, w = 4 this is the right-hand matrix of the paper's Figure 3.
    """
    normal = normal_relative_positions(q_len, k_len)
    grouped = grouped_relative_positions(q_len, k_len, group_size, window)
    return torch.where(grouped_attention_mask(q_len, k_len, window), grouped, normal)


def _check_window_inside(pretrained_length: int, window: int) -> tuple[int, int]:
    """Both positive integers, and the neighbor window inside the pretrained range."""
    pretrained_length = check_positive_int("pretrained_length", pretrained_length)
    window = check_positive_int("window", window)
    if window >= pretrained_length:
        raise ValueError(f"window must be smaller than pretrained_length ({pretrained_length}), got {window}")
    return pretrained_length, window


def max_context_length(pretrained_length: int, group_size: int, window: int) -> int:
    """Eq. 4: the longest input whose relative positions all stay below L,  (L - w) * g + w.

    Exact when g divides w. Otherwise the integer shift w - w // g exceeds w - w / g, and an input of
    this length can reach relative position L (one past the pretrained range) in its first keys.
    """
    pretrained_length, window = _check_window_inside(pretrained_length, window)
    group_size = check_positive_int("group_size", group_size)
    return (pretrained_length - window) * group_size + window


def min_group_size(pretrained_length: int, target_length: int, window: int) -> int:
    """The smallest g with (L - w) * g + w >= target_length (the inverse of Eq. 4)."""
    pretrained_length, window = _check_window_inside(pretrained_length, window)
    target_length = check_positive_int("target_length", target_length)
    if target_length <= pretrained_length:
        return 1
    return max(1, math.ceil((target_length - window) / (pretrained_length - window)))


def largest_relative_position(seq_len: int, group_size: int, window: int) -> int:
    """The largest merged relative position used by a sequence of seq_len tokens.

    (N - 1) // g + w - w // g once N > w (first query row to last key), else N - 1.
    """
    seq_len = check_positive_int("seq_len", seq_len)
    shift = group_shift(group_size, window)
    if seq_len <= window:
        return seq_len - 1
    return (seq_len - 1) // group_size + shift
