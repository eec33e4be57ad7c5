"""Exercises of notebook 06: passkey retrieval (the tiny passkey model, L_train = 128 bytes)."""
from __future__ import annotations

from .. import positions
from ..tiny.model import TinyLMConfig
from . import mistakes
from .core import Explain, Value, Wrong

L = TinyLMConfig().train_length  # 128 bytes


EXERCISES = [
    Explain(
        prompt="Which depth is hardest at 8 x L_train? Re-run that column with trials=10: is the difference real?",
        hints=["`evaluate.passkey_accuracy(model, [8 * L], depths, method, trials=10, seed=5)`.",
               "One or two keys out of ten is noise; a depth far below the others is a weakness."],
    ),
    Value(
        prompt="A larger window: the reach of selfextend(16, 64) (then compare its accuracy with w = 32).",
        names=("reach_w64",),
        starter="reach_w64 = ____  # (L - w) * g + w for g = 16, w = 64",
        answer=lambda: {"reach_w64": positions.max_context_length(L, 16, 64)},
        hints=["Eq. 4: (L - w) * g + w with L = 128.", "`selfextend(16, 64).reach(L)`."],
        wrong=[
            Wrong("Eq. 4 is (L - w) * g + w, not L * g: the window keeps w of the L positions.",
                  {"reach_w64": mistakes.reach_without_window(L, 16, 64)}),
            Wrong("you forgot the + w: the window's w tokens come on top of the (L - w) * g grouped ones.",
                  {"reach_w64": (L - 64) * 16}),
        ],
    ),
    Value(
        prompt="Predict from Eq. 4 the smallest g (w = 32) for 1024-byte prompts (then check g below and at it).",
        names=("g_1024",),
        starter="g_1024 = ____  # smallest g (w = 32) with (L - w) * g + w >= 1024",
        answer=lambda: {"g_1024": positions.min_group_size(L, 8 * L, 32)},
        hints=["g >= (N - w) / (L - w), rounded up.", "`se.min_group_size(L, 8 * L, 32)`."],
        wrong=[
            Wrong("you used L * g >= N. Eq. 4 is (L - w) * g + w: the window keeps w of the L positions.",
                  {"g_1024": mistakes.group_size_without_window(L, 8 * L, 32)}),
            Wrong("rounded down: (128 - 32) * 10 + 32 = 992 < 1024. Round up.",
                  {"g_1024": mistakes.floor_group_size(L, 8 * L, 32)}),
        ],
    ),
]
