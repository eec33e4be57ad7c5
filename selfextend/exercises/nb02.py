"""Exercises of notebook 02: the position matrices of SelfExtend (Figure 3, Eq. 4)."""
from __future__ import annotations

from .. import positions
from .core import Case, Explain, Function, Value, Wrong


def _merged_position(i: int, j: int, group_size: int, window: int) -> int:
    """Answer key: entry (i, j) of the package's merged matrix."""
    return int(positions.merged_relative_positions(i + 1, i + 1, group_size, window)[i, j])


def _pairs() -> list[Case]:
    cases = []
    for i, j, g, w in ((9, 0, 2, 4), (9, 5, 2, 4), (9, 6, 2, 4), (9, 9, 2, 4), (20, 16, 2, 4), (20, 3, 3, 4),
                       (15, 9, 3, 6), (15, 0, 3, 6), (100, 37, 8, 32), (7, 2, 1, 4), (6, 2, 3, 4), (9, 5, 3, 4)):
        cases.append(Case((i, j, g, w), f"i={i}, j={j}, g={g}, w={w}"))
    return cases


def _shift_cases() -> list[Case]:
    return [Case((g, w), f"g={g}, w={w}") for g, w in ((2, 4), (3, 4), (4, 1024), (3, 6), (5, 7), (1, 9), (8, 3))]


EXERCISES = [
    Value(
        prompt="Figure 3 for N = 16, g = 3, w = 6 (L = 9): the largest relative position.",
        names=("largest_16",),
        starter="largest_16 = ____  # largest relative position for N = 16, g = 3, w = 6",
        answer=lambda: {"largest_16": positions.largest_relative_position(16, 3, 6)},
        hints=["Draw it: `plot_selfextend_positions(seq_len=16, group_size=3, window=6, pretrained_length=9)`, "
               "or look at `se.merged_relative_positions(16, 16, 3, 6).max()`.",
               "The farthest pair is (15, 0), and it is grouped: 15 // 3 + (6 - 6 // 3)."],
        wrong=[
            Wrong("that is plain attention's largest distance N - 1; the pair (15, 0) is grouped under SelfExtend.",
                  {"largest_16": 15}),
            Wrong("that leaves out the shift w - w // g added to the grouped query positions.", {"largest_16": 15 // 3}),
            Wrong("the shift is w - w // g, not w.", {"largest_16": 15 // 3 + 6}),
        ],
    ),
    Value(
        prompt="L = 7, w = 3, g = 2: the largest relative position at N = 11, the length Eq. 4 allows.",
        names=("largest_11",),
        starter="largest_11 = ____  # largest relative position for N = 11, g = 2, w = 3 (L = 7)",
        answer=lambda: {"largest_11": positions.largest_relative_position(11, 2, 3)},
        hints=["(N - 1) // g + (w - w // g) for the first key of the last row.",
               "With integer division the shift is 3 - 3 // 2 = 2, not 3 - 3/2 = 1.5."],
        wrong=[
            Wrong("that uses the shift w - w/g = 1.5: a fractional position. Positions are integers: the shift is "
                  "w - w // g = 2 (Algorithm 1), which is why Eq. 4 overestimates the reach when g does not divide w.",
                  {"largest_11": 10 // 2 + 3 - 3 / 2}),
        ],
    ),
    Value(
        prompt="Llama-2 (L = 4096) with w = 1024: the group size needed for 32,768 tokens.",
        names=("g_llama2",),
        starter="g_llama2 = ____  # smallest group size for 32,768 tokens, L = 4096, w = 1024",
        answer=lambda: {"g_llama2": positions.min_group_size(4096, 32_768, 1024)},
        hints=["Eq. 4: (L - w) * g + w >= N.", "g = ceil((32768 - 1024) / (4096 - 1024))."],
        wrong=[
            Wrong("you used L * g >= N. Eq. 4 is (L - w) * g + w: the window keeps w of the L positions for itself.",
                  {"g_llama2": 8}),
            Wrong("rounded down: (4096 - 1024) * 10 + 1024 = 31,744 < 32,768. Round up.", {"g_llama2": 10}),
        ],
    ),
    Explain(
        prompt="One decoding step (1 query, 12 cached keys, g = 2, w = 4): explain each number of its row.",
        hints=["`se.merged_relative_positions(1, 12, 2, 4)`: the query is the newest token, at position 11.",
               "Keys 8..11 are inside the window (distance < 4); keys 0..7 get 11 // 2 + 2 - j // 2."],
    ),
    Function(
        prompt="Write `shift_of(g, w)`: the shift added to the grouped query positions (Algorithm 1).",
        names=("shift_of",),
        starter="def shift_of(g, w):\n"
                "    # the shift added to grouped query positions, so the merged positions continue after the window\n"
                "    return ____",
        answer=positions.group_shift,
        cases=_shift_cases,
        hints=["Algorithm 1: `shift = w_size - w_size // g_size`.",
               "Positions are integers: use integer division, `w - w // g`."],
        wrong=[
            Wrong("w - w/g is a float (fractional positions) when g does not divide w. Positions are integers: "
                  "the shift is w - w // g.", {"shift_of": lambda g, w: w - w / g}),
            Wrong("that is w // g, the window's size in groups; the shift is w - w // g.",
                  {"shift_of": lambda g, w: w // g}),
        ],
    ),
    Function(
        prompt="Write `merged_position(i, j, g, w)`: entry (i, j) of the merged matrix, for a key j <= i.",
        names=("merged_position",),
        starter="def merged_position(i, j, g, w):\n"
                "    # the relative position SelfExtend uses for query i and key j (j <= i)\n"
                "    return ____",
        answer=_merged_position,
        cases=_pairs,
        hints=["Inside the window (i - j < w) it is i - j; outside it is the shifted grouped distance.",
               "`i - j if i - j < w else (i // g + w - w // g) - j // g`."],
        wrong=[
            Wrong("at the window edge i - j = w the grouped position is used: the window is i - j < w "
                  "(you kept i - j <= w).",
                  {"merged_position": lambda i, j, g, w: i - j if i - j <= w else i // g + w - w // g - j // g}),
            Wrong("the grouped query position needs the shift w - w // g.",
                  {"merged_position": lambda i, j, g, w: i - j if i - j < w else i // g - j // g}),
            Wrong("the shift must use integer division: w - w // g, not w - w/g (fractional positions).",
                  {"merged_position": lambda i, j, g, w: i - j if i - j < w else i // g + w - w / g - j // g}),
        ],
    ),
]
