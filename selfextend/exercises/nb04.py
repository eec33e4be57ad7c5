"""Exercises of notebook 04: attention heatmaps (normal, grouped, SelfExtend)."""
from __future__ import annotations

import math

import torch

from .. import positions
from ..attention import grouped_positions
from ..rope import apply_rope
from .core import Case, Explain, Function, Value, Wrong


def _rope_logits(q: torch.Tensor, k: torch.Tensor, query_positions: torch.Tensor, key_positions: torch.Tensor):
    """Answer key: <rope(q_i, p_i), rope(k_j, p'_j)> / sqrt(d), [nq, nk]."""
    return apply_rope(q, query_positions) @ apply_rope(k, key_positions).T / math.sqrt(q.shape[-1])


def _logit_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(5)
    cases = []
    for n, d, g, w in ((24, 64, 3, 6), (10, 8, 2, 4), (16, 16, 4, 4)):
        q, k = (torch.randn(n, d, dtype=torch.float64, generator=generator) for _ in range(2))
        grouped_query, grouped_key = grouped_positions(torch.arange(n), g, w)
        cases.append(Case((q, k, torch.arange(n), torch.arange(n)), f"q, k [{n}, {d}] at normal positions"))
        cases.append(Case((q, k, grouped_query, grouped_key), f"q, k [{n}, {d}] at grouped positions (g={g}, w={w})"))
    return cases


EXERCISES = [
    Explain(
        prompt="Put the needle at position 20 (inside the last query's window): compare the three weights on it.",
        hints=["`q_needle, k_needle, v_needle = needle_input(24, 20)`, then "
               "`se.self_extend_attention(..., return_weights=True)` with g = 1 and g = 3.",
               "The needle is at distance 3 < w from the last query: which logit does SelfExtend use for it?"],
    ),
    Explain(
        prompt="Give keys 9, 10, 11 the same content: their grouped logits are equal, the normal ones are not.",
        hints=["On a fresh `q_same, k_same, v_same = needle_input(24, 3)`: `k_same[0, 0, 10] = k_same[0, 0, 9]` and "
               "the same for key 11, then compute the last query's logits.",
               "With g = 3, what are 9 // 3, 10 // 3 and 11 // 3?"],
    ),
    Value(
        prompt="Long example (N = 512, w = 32) with g = 32: the largest relative position SelfExtend uses.",
        names=("largest_g32",),
        starter="largest_g32 = ____  # largest relative position for N = 512, g = 32, w = 32",
        answer=lambda: {"largest_g32": positions.largest_relative_position(512, 32, 32)},
        hints=["The farthest pair is the last query (511) and the first key (0), and it is grouped.",
               "(N - 1) // g + (w - w // g), or `se.largest_relative_position(512, 32, 32)`."],
        wrong=[
            Wrong("that leaves out the shift: grouped query positions are i // g + (w - w // g).",
                  {"largest_g32": 511 // 32}),
            Wrong("the shift is w - w // g, not w.", {"largest_g32": 511 // 32 + 32}),
            Wrong("that is plain attention's largest distance, N - 1. With SelfExtend the far pair is grouped.",
                  {"largest_g32": 511}),
        ],
    ),
    Function(
        prompt="Write `rope_logits(q, k, query_positions, key_positions)`: the logit matrix of one head.",
        names=("rope_logits",),
        starter="def rope_logits(q, k, query_positions, key_positions):\n"
                "    # q [nq, d], k [nk, d]; rotate each to its positions, return the logits [nq, nk]\n"
                "    return ____",
        answer=_rope_logits,
        cases=_logit_cases,
        hints=["`se.apply_rope(q, query_positions)` rotates the queries, `se.apply_rope(k, key_positions)` the keys.",
               "Logits are q·k / sqrt(d): `q_rot @ k_rot.T / math.sqrt(q.shape[-1])`."],
        wrong=[
            Wrong("the logits are not scaled: attention divides q·k by sqrt(d) (here `math.sqrt(q.shape[-1])`).",
                  {"rope_logits": lambda q, k, qp, kp: apply_rope(q, qp) @ apply_rope(k, kp).T}),
            Wrong("the scale is 1 / sqrt(d), not 1 / d.",
                  {"rope_logits": lambda q, k, qp, kp: apply_rope(q, qp) @ apply_rope(k, kp).T / q.shape[-1]}),
            Wrong("the positions are swapped: rotate the queries to `query_positions` and the keys to `key_positions`.",
                  {"rope_logits": lambda q, k, qp, kp: apply_rope(q, kp) @ apply_rope(k, qp).T / math.sqrt(q.shape[-1])}),
        ],
    ),
]
