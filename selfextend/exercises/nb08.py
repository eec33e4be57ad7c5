"""Exercises of notebook 08: SelfExtend on real models."""
from __future__ import annotations

from .. import positions
from . import mistakes
from .core import Case, Explain, Function, Value, Wrong

# Eq. 4's answer depends on L only through the ratios N / L and w / L: the numbers are the same for
# the tiny Llama (L = 64) and for Llama-2 (L = 4096).
_L = 4096


def _group_sizes() -> dict:
    return {"g_quarter": positions.min_group_size(_L, 8 * _L, _L // 4),
            "g_half": positions.min_group_size(_L, 8 * _L, _L // 2)}


def _cases() -> list[Case]:
    return [Case(args, f"L={args[0]}, target={args[1]}, window={args[2]}")
            for args in ((4096, 32768, 1024), (512, 4096, 32), (512, 4096, 256), (64, 256, 16), (64, 60, 16), (7, 11, 3))]


EXERCISES = [
    Value(
        prompt="Eight times the pretrained length: the smallest g for w = L/4 and for w = L/2.",
        names=("g_quarter", "g_half"),
        starter="g_quarter = ____  # smallest g to read 8 * L tokens with w = L // 4\n"
                "g_half = ____     # the same with w = L // 2",
        answer=_group_sizes,
        hints=["Eq. 4: (L - w) * g + w >= 8 * L. `se.min_group_size(L, 8 * L, window)` solves it for g.",
               "Check with `max_supported_length(L, g, window)`: the smallest g reaches 8 * L, g - 1 does not."],
        wrong=[
            Wrong("you used L * g >= 8 L. Eq. 4 is (L - w) * g + w: only L - w positions are left for the groups.",
                  {"g_quarter": 8, "g_half": 8}),
            Wrong("g_quarter is rounded down: (L - w) * g + w must reach 8 L, so round (N - w) / (L - w) up.",
                  {"g_quarter": 10, "g_half": 15}),
            Wrong("the two are swapped: the wider window leaves fewer positions (L - w) for the groups, "
                  "so it needs the larger g.", {"g_quarter": 15, "g_half": 11}),
        ],
    ),
    Explain(
        prompt="Left-pad a batch of two prompts: with SelfExtend each row's logits equal the row run alone.",
        hints=["Pad with token 0 at the start and set those `attention_mask` entries to 0.",
               "Compare `together[0, pad:]` with the short prompt's logits run alone."],
    ),
    Explain(
        prompt="Feed more than (L - w) * g + w tokens with SelfExtend applied. What does it tell you?",
        hints=["`with warnings.catch_warnings(record=True) as caught: warnings.simplefilter('always'); ...`",
               "Read the warning's text: it names the group size that would be needed."],
    ),
    Function(
        prompt="Write `smallest_group_size(L, target, window)`: the inverse of Eq. 4.",
        names=("smallest_group_size",),
        starter="def smallest_group_size(L, target, window):\n"
                "    # the smallest integer g with (L - window) * g + window >= target (at least 1)\n"
                "    return ____",
        answer=positions.min_group_size,
        cases=_cases,
        hints=["Solve (L - w) * g + w >= N for g: g >= (N - w) / (L - w).",
               "`max(1, math.ceil((target - window) / (L - window)))`."],
        wrong=[
            Wrong("you inverted L * g >= N. Eq. 4 is (L - w) * g + w: the window keeps w of the L positions.",
                  {"smallest_group_size": mistakes.group_size_without_window}),
            Wrong("rounded down: g must be an integer with (L - w) * g + w >= N, so round up (math.ceil).",
                  {"smallest_group_size": mistakes.floor_group_size}),
        ],
    ),
]
