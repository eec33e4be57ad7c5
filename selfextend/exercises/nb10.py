"""Exercises of notebook 10: SelfExtend's relatives (ReRoPE, DCA, the float shift, ...)."""
from __future__ import annotations

import torch

from .. import methods as sm
from .core import Explain, Value, Wrong

L = 128  # the tiny model's training length, as in the notebook


def _float_gap() -> float:
    """The one value by which the float-shift map differs from Algorithm 1's (g = 3, w = 4, N = 12)."""
    exact, floats = sm.position_map(sm.SelfExtend(3, 4), 12), sm.position_map(sm.SelfExtendFloat(3, 4), 12)
    gap = (exact[0] - floats[0])[exact[2]]
    return float(gap[gap != 0].unique()[0])


def _smallest_rerope_g() -> int:
    rerope = sm.position_map(sm.ReRoPE(4), 40)[0]
    return next(g for g in range(1, 100) if torch.equal(sm.position_map(sm.SelfExtend(g, 4), 40)[0], rerope))


EXERCISES = [
    Value(
        prompt="SelfExtend(3, 4) and its float-shift variant on 12 tokens: by how much do the grouped cells differ?",
        names=("float_gap",),
        starter="float_gap = ____  # Algorithm 1's position minus the float-shift position, in a grouped cell (g = 3, w = 4)",
        answer=lambda: {"float_gap": _float_gap()},
        hints=["Draw both with `sm.position_map` and subtract the value matrices.",
               "The two shifts are w - w // g and w - w / g: subtract them."],
        wrong=[
            Wrong("they do differ here: g = 3 does not divide w = 4, so w // g and w / g are not equal.",
                  {"float_gap": 0.0}, when=lambda v: v == 0),
            Wrong("that is w / g; the gap is w / g - w // g.", {"float_gap": 4 / 3}),
        ],
    ),
    Value(
        prompt="The smallest g for which SelfExtend(g, w = 4) equals ReRoPE(4) on 40 tokens.",
        names=("smallest_rerope_g",),
        starter="smallest_rerope_g = ____  # smallest g with SelfExtend(g, 4) == ReRoPE(4) on 40 tokens",
        answer=lambda: {"smallest_rerope_g": _smallest_rerope_g()},
        hints=["ReRoPE's far position is w. SelfExtend's is (i // g + w - w // g) - j // g: when is that w for every i, j?",
               "You need w // g = 0 and i // g = j // g = 0 for every position up to 39."],
        wrong=[
            Wrong("g > w makes w // g = 0, but i // g - j // g must also be 0 for every pair: all 40 positions in one group.",
                  {"smallest_rerope_g": 5}),
            Wrong("positions run 0..39, so g = 39 still puts position 39 in a second group: g must exceed 39.",
                  {"smallest_rerope_g": 39}),
        ],
    ),
    Value(
        prompt="DCA with the reference split (chunk 3L/4, local window L/8), L = 128: its largest relative position.",
        names=("dca_largest",),
        starter="dca_largest = ____  # min(N - 1, s + w - 1) for s = 3L/4, w = L/8, L = 128, a long input",
        answer=lambda: {"dca_largest": sm.DualChunk(3 * L // 4, L // 8, L).largest_relative_position(16 * L)},
        hints=["s = 3 * 128 // 4 = 96 and w = 128 // 8 = 16.", "`sm.DualChunk(96, 16, 128).largest_relative_position(16 * 128)`."],
        wrong=[
            Wrong("positions start at 0: the largest is s + w - 1, not s + w.", {"dca_largest": 3 * L // 4 + L // 8}),
            Wrong("that is plain attention's N - 1; DCA wraps positions so they never exceed s + w - 1.",
                  {"dca_largest": 16 * L - 1}),
        ],
    ),
    Explain(
        prompt="From the committed results: which method has the lowest bits per byte at 4 x, and by how much?",
        hints=["`json.loads((checkpoints_dir().parent / 'experiments' / 'tiny_lm_relatives.json').read_text())`.",
               "Collect `r['bits_per_byte'][str(4 * L)]` per `r['label']` and take the minimum."],
    ),
]
