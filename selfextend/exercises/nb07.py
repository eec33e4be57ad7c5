"""Exercises of notebook 07: choosing the group size and the window (the tiny model, L_train = 128)."""
from __future__ import annotations

from .. import positions
from ..tiny.model import TinyLMConfig
from .core import Explain, Predicate, Value, Wrong, compare_numbers, describe

L = TinyLMConfig().train_length  # 128 bytes
N = 8 * L  # the grid's input length
GROUP_SIZES, WINDOWS = (2, 4, 8, 16, 32), (16, 32, 64, 96)


def _thumb(n: int, w: int) -> int:
    """The smallest g whose largest relative position stays below 2/3 L (the rule of thumb)."""
    return next(g for g in range(1, 10 * n) if positions.largest_relative_position(n, g, w) < (2 / 3) * L)


def _predicted_break(marked_g, marked_w, predicted_break) -> str | None:
    """None when (marked_g, marked_w) is a cell marked "x" and predicted_break is its Eq. 4 limit, else why not."""
    g, w = marked_g, marked_w
    if g not in GROUP_SIZES or w not in WINDOWS:
        return (f"(marked_g, marked_w) = ({describe(g)}, {describe(w)}) is not a cell of the grid: "
                f"g in {list(GROUP_SIZES)}, w in {list(WINDOWS)}.")
    if isinstance(predicted_break, bool) or not isinstance(predicted_break, (int, float)):
        return f"predicted_break: expected a number of bytes, got {describe(predicted_break)}."
    reach = positions.max_context_length(L, g, w)
    if predicted_break == L * g:
        return "Eq. 4 is (L - w) * g + w, not L * g: the window keeps w of the L positions."
    if predicted_break == (L - w) * g and reach != (L - w) * g:
        return "you forgot the + w: the window's w tokens come on top of the (L - w) * g grouped ones."
    if isinstance(predicted_break, float):
        return "Eq. 4 gives an integer number of tokens."
    if predicted_break != reach:
        return (f"for g = {g}, w = {w}, {describe(predicted_break)} is {compare_numbers(predicted_break, reach)}: "
                f"Eq. 4 is (L - w) * g + w with L = {L}.")
    if reach >= N:
        return f"that cell reaches {reach} >= {N} bytes: it is not marked \"x\". Pick a cell that breaks before {N}."
    return None


EXERCISES = [
    Predicate(
        prompt="Pick a grid cell marked \"x\" and predict from Eq. 4 where its loss curve breaks.",
        names=("marked_g", "marked_w", "predicted_break"),
        starter="marked_g, marked_w = ____, ____  # g and w of a cell of the grid marked \"x\"\n"
                "predicted_break = ____            # where its loss curve should break (Eq. 4), in bytes",
        test=_predicted_break,
        hints=["Cells marked \"x\" have (L - w) * g + w < 1024: for example g = 4 or g = 8.",
               "`se.max_context_length(L, marked_g, marked_w)`; then measure with `evaluate.position_bits` and `evaluate.break_position`."],
        wrong=[
            Wrong("Eq. 4 is (L - w) * g + w, not L * g: the window keeps w of the L positions.",
                  {"marked_g": 4, "marked_w": 32, "predicted_break": 512}),
            Wrong("you forgot the + w: the window's w tokens come on top of the (L - w) * g grouped ones.",
                  {"marked_g": 4, "marked_w": 32, "predicted_break": 384}),
            Wrong(f"that cell reaches 1808 >= {N} bytes: it is not marked \"x\". Pick a cell that breaks before {N}.",
                  {"marked_g": 16, "marked_w": 16, "predicted_break": 1808}),
        ],
    ),
    Value(
        prompt="N = 2048, w = 32: the g Eq. 4 allows and the g the rule of thumb (2/3 L) recommends.",
        names=("g_eq4", "g_thumb"),
        starter="g_eq4 = ____    # smallest g Eq. 4 allows for N = 16 * L, w = 32\n"
                "g_thumb = ____  # smallest g with w + (N - w) / g below 2/3 L",
        answer=lambda: {"g_eq4": positions.min_group_size(L, 16 * L, 32), "g_thumb": _thumb(16 * L, 32)},
        hints=["Eq. 4: `se.min_group_size(L, 16 * L, 32)`. The rule of thumb: the largest relative position "
               "(`se.largest_relative_position(N, g, w)`) must stay below (2/3) * L.",
               "`next(g for g in range(1, 200) if se.largest_relative_position(16 * L, g, 32) < 2 / 3 * L)`."],
        wrong=[
            Wrong("g_eq4: you used L * g >= N. Eq. 4 is (L - w) * g + w.", {"g_eq4": 16, "g_thumb": _thumb(16 * L, 32)}),
            Wrong("g_thumb is rounded down: with g = 37 the largest position is still above 2/3 L. Round up.",
                  {"g_eq4": positions.min_group_size(L, 16 * L, 32), "g_thumb": _thumb(16 * L, 32) - 1}),
            Wrong("the two are swapped: the rule of thumb is stricter (2/3 L instead of L), so it needs the larger g.",
                  {"g_eq4": _thumb(16 * L, 32), "g_thumb": positions.min_group_size(L, 16 * L, 32)}),
        ],
    ),
    Explain(
        prompt="Which positions are well trained? The plain model's loss at positions 0-127 of many 128-byte windows.",
        hints=["`evaluate.position_bits(model, L, PLAIN, count=256, seed=4, batch_size=64).mean(0)`.",
               "Smooth it with `evaluate.smooth(bits, 16)` and look for the lowest bins."],
    ),
]
