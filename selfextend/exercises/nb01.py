"""Exercises of notebook 01: RoPE and relative positions."""
from __future__ import annotations

import math

import torch

from .. import positions
from ..rope import inverse_frequencies
from .core import Case, Explain, Function, Value, Wrong


def _slow_pairs(head_dim: int, base: float, pretrained_length: int) -> int:
    wavelengths = 2 * math.pi / inverse_frequencies(head_dim, base)
    return int((wavelengths > pretrained_length - 1).sum())


def _wavelengths(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Answer key: 2 pi / theta_k, theta_k = base ** (-2k / d)."""
    return 2 * math.pi / inverse_frequencies(head_dim, base)


def _wavelength_cases() -> list[Case]:
    return [Case((d, b), f"head_dim={d}, base={b:g}") for d, b in ((64, 10000.0), (128, 500000.0), (8, 10000.0), (2, 10000.0))]


EXERCISES = [
    Explain(
        prompt="RoPE is a rotation: check that it keeps the length of a vector at p = 0, 1, 10^4.",
        hints=["Compare `x.norm()` with `se.apply_rope(x[None, :], torch.tensor([p]))[0].norm()`.",
               "Each pair is turned by a 2 x 2 rotation matrix; what do rotations do to lengths?"],
    ),
    Explain(
        prompt="Shift all query and key positions by c = 1000: the score matrix does not change. Why does it matter?",
        hints=["Rebuild `scores` with `positions + 1000` for both the queries and the keys.",
               "The score depends on i - j only. What is (i + c) - (j + c)?"],
    ),
    Value(
        prompt="Llama-3 (base 500 000, d = 128, L = 8192): how many of its 64 pairs never complete a full turn?",
        names=("never_full_turn",),
        starter="never_full_turn = ____  # how many of Llama-3's 64 RoPE pairs never complete a full turn in 8192 tokens",
        answer=lambda: {"never_full_turn": _slow_pairs(128, 500_000.0, 8192)},
        hints=["`inverse_frequencies(128, 500_000.0)` gives the 64 frequencies theta_k; the wavelength is 2 pi / theta_k.",
               "Count the pairs whose wavelength is longer than the 8191 distances of pretraining: "
               "`int((wavelengths > 8192 - 1).sum())`."],
        wrong=[
            Wrong("that counts the pairs that *do* complete a turn (the fast ones); the question asks for the slow ones.",
                  {"never_full_turn": 64 - _slow_pairs(128, 500_000.0, 8192)}),
            Wrong("that is the count for base 10 000 (Llama-2); Llama-3 uses base 500 000, so its pairs turn more slowly.",
                  {"never_full_turn": _slow_pairs(128, 10_000.0, 8192)}),
        ],
    ),
    Value(
        prompt="L = 512, N = 4096: the smallest group size for w = 32 and for w = 256.",
        names=("g_32", "g_256"),
        starter="g_32 = ____   # smallest group size for window w = 32  (L = 512, N = 4096)\n"
                "g_256 = ____  # smallest group size for window w = 256",
        answer=lambda: {"g_32": positions.min_group_size(512, 4096, 32), "g_256": positions.min_group_size(512, 4096, 256)},
        hints=["Eq. 4: SelfExtend reaches (L - w) * g + w tokens. Solve (L - w) * g + w >= N for g.",
               "g = ceil((N - w) / (L - w)); `se.min_group_size(512, 4096, window)` does it for you."],
        wrong=[
            Wrong("you used L * g >= N. Eq. 4 is (L - w) * g + w: the window takes w of the L positions, "
                  "so only L - w are left for the groups.", {"g_32": 8, "g_256": 8}),
            Wrong("g_32 is rounded down: with g = 8, (512 - 32) * 8 + 32 = 3872 < 4096. Round up (math.ceil).",
                  {"g_32": 8, "g_256": 15}),
            Wrong("the two are swapped: the larger window leaves fewer positions (L - w) for the groups, "
                  "so it needs the larger group.", {"g_32": 15, "g_256": 9}),
        ],
    ),
    Function(
        prompt="Write `pair_wavelengths(head_dim, base)`: the distance (in tokens) after which each RoPE pair has made a full turn.",
        names=("pair_wavelengths",),
        starter="def pair_wavelengths(head_dim, base=10000.0):\n"
                "    # tokens after which pair k has turned by 2 pi, for k = 0 .. head_dim/2 - 1 (a tensor)\n"
                "    return ____",
        answer=_wavelengths,
        cases=_wavelength_cases,
        hints=["Pair k turns by theta_k = base ** (-2k / d) per token (`inverse_frequencies(head_dim, base)`).",
               "A full turn is 2 pi radians: `2 * math.pi / inverse_frequencies(head_dim, base)`."],
        wrong=[
            Wrong("that is theta_k, the angle per token (radians). The wavelength is the number of tokens for a "
                  "full turn: 2 pi / theta_k.", {"pair_wavelengths": lambda d, b=10000.0: inverse_frequencies(d, b)}),
            Wrong("that is 1 / theta_k: a full turn is 2 pi radians, not 1, so multiply by 2 pi.",
                  {"pair_wavelengths": lambda d, b=10000.0: 1 / inverse_frequencies(d, b)}),
            Wrong("the exponent is -2k/d, not -k/d: pair k uses theta_k = base ** (-2k / d), k = 0 .. d/2 - 1.",
                  {"pair_wavelengths": lambda d, b=10000.0: 2 * math.pi * b ** (torch.arange(d // 2, dtype=torch.float64) / d)}),
        ],
    ),
]
