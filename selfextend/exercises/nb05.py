"""Exercises of notebook 05: beyond the context window (the tiny model, L_train = 128 bytes)."""
from __future__ import annotations

from .. import positions
from ..tiny.model import TinyLMConfig
from . import mistakes
from .core import Case, Explain, Function, Value, Wrong

L = TinyLMConfig().train_length  # 128 bytes, the committed checkpoints' training length


def _cases() -> list[Case]:
    return [Case(args, f"L={args[0]}, g={args[1]}, w={args[2]}")
            for args in ((128, 4, 32), (128, 21, 32), (4096, 8, 1024), (512, 9, 32), (7, 2, 3), (64, 1, 16))]


EXERCISES = [
    Value(
        prompt="The smallest group size with which SelfExtend (w = 32) reaches 16 x L_train = 2048 bytes.",
        names=("g_2048",),
        starter="g_2048 = ____  # smallest g with (L - w) * g + w >= 16 * L, for w = 32",
        answer=lambda: {"g_2048": positions.min_group_size(L, 16 * L, 32)},
        hints=["Eq. 4 inverted: g >= (N - w) / (L - w), rounded up.", "`se.min_group_size(L, 16 * L, 32)`."],
        wrong=[
            Wrong("you used L * g >= N. Eq. 4 is (L - w) * g + w: the window keeps w of the L positions.",
                  {"g_2048": mistakes.group_size_without_window(L, 16 * L, 32)}),
        ],
    ),
    Explain(
        prompt="PI and NTK with the scale the input needs (s = 4 at 512 bytes): better? as good as SelfExtend?",
        hints=["`evaluate.bits_per_byte(model, 4 * L, AttentionMethod('pi', scale=4.0), count=8)`.",
               "Compare with `selfextend(8, 32)` and `PLAIN` on the same windows."],
    ),
    Value(
        prompt="Where should the g = 4, w = 32 curve break? Predict it from Eq. 4 (then measure it).",
        names=("predicted_break",),
        starter="predicted_break = ____  # Eq. 4 for g = 4, w = 32 and L = L_train: where the curve should break",
        answer=lambda: {"predicted_break": positions.max_context_length(L, 4, 32)},
        hints=["Eq. 4: (L - w) * g + w.", "`se.max_context_length(L, 4, 32)` or `selfextend(4, 32).reach(L)`."],
        wrong=[
            Wrong("Eq. 4 is (L - w) * g + w, not L * g: the window takes w of the L positions.",
                  {"predicted_break": mistakes.reach_without_window(L, 4, 32)}),
            Wrong("you forgot the + w: the window's w tokens come on top of the (L - w) * g grouped ones.",
                  {"predicted_break": (L - 32) * 4}),
        ],
    ),
    Function(
        prompt="Write `eq4_reach(L, g, w)`: Eq. 4, the longest input whose relative positions all stay below L.",
        names=("eq4_reach",),
        starter="def eq4_reach(L, g, w):\n"
                "    # Eq. 4 of the paper\n"
                "    return ____",
        answer=positions.max_context_length,
        cases=_cases,
        hints=["The window keeps w exact positions; the other L - w positions each cover g tokens.",
               "`(L - w) * g + w`."],
        wrong=[
            Wrong("Eq. 4 is (L - w) * g + w, not L * g: the window keeps w of the L positions for itself.",
                  {"eq4_reach": mistakes.reach_without_window}),
            Wrong("you forgot the + w: the window's w tokens come on top of the (L - w) * g grouped ones.",
                  {"eq4_reach": lambda L_, g, w: (L_ - w) * g}),
            Wrong("that is L * g + w: only L - w positions are left for the groups.",
                  {"eq4_reach": lambda L_, g, w: L_ * g + w}),
        ],
    ),
]
