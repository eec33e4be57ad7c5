"""Exercises of notebook 03: Algorithm 1 and the merge mask."""
from __future__ import annotations

import torch

from .. import attention, positions
from . import mistakes
from .core import Case, Explain, Function, Value, Wrong


def _decoding_mask() -> torch.Tensor:
    """Answer key: which of 12 keys the query at position 11 groups (w = 4)."""
    return positions.grouped_attention_mask(1, 12, 4)  # [1, 12], True = grouped


def _merge(neighbor: torch.Tensor, grouped: torch.Tensor, distance: torch.Tensor, window: int) -> torch.Tensor:
    """Answer key: the package's rule (``selfextend.attention.merged_attention``): grouped where i - j >= w."""
    return torch.where(distance >= window, grouped, neighbor)


def _merge_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(3)
    cases = []
    for nq, nk, window in ((10, 10, 4), (6, 6, 2), (10, 10, 1), (1, 12, 4)):
        neighbor = torch.randn(nq, nk, dtype=torch.float64, generator=generator)
        grouped = torch.randn(nq, nk, dtype=torch.float64, generator=generator)
        distance = positions.normal_relative_positions(nq, nk)
        cases.append(Case((neighbor, grouped, distance, window), f"{nq} x {nk} logits, window={window}"))
    return cases


def _attention_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(4)
    cases = []
    for n, d, g, w in ((10, 8, 2, 4), (16, 8, 3, 4), (12, 16, 4, 6)):
        q, k, v = (torch.randn(1, 1, n, d, dtype=torch.float64, generator=generator) for _ in range(3))
        cases.append(Case((q, k, v, g, w), f"N={n}, d={d}, g={g}, w={w}"))
    return cases


def _reference(q, k, v, group_size, window):
    return attention.self_extend_attention(q, k, v, group_size, window, implementation="reference")


EXERCISES = [
    Value(
        prompt="The merge mask of one decoding step (query at 11, 12 keys, w = 4): True where the key is grouped.",
        names=("decoding_mask",),
        starter="n_keys, window = 12, 4\n"
                "decoding_mask = ____  # bool tensor [1, 12]: True where the query at position 11 uses the grouped logit",
        answer=lambda: {"decoding_mask": _decoding_mask()},
        hints=["Build Algorithm 1's full n_keys x n_keys mask as in the cell above, under a new name (say "
               "`merge_mask`, so that the lesson's `mask` stays as it is), and take its last row: `merge_mask[-1:]`.",
               "Algorithm 1's mask is 1 where the *neighbor* logit is kept, so the grouped keys are "
               "`merge_mask[-1:] == 0`."],
        wrong=[
            Wrong("True should mark the *grouped* keys (i - j >= w). Algorithm 1's mask is 1 for the neighbor "
                  "logits: take its last row `== 0`.", {"decoding_mask": ~_decoding_mask()}),
            Wrong("key 7 is at distance exactly w = 4 from the query: at i - j = w the grouped logit is used "
                  "(i - j >= w, not > w).", {"decoding_mask": torch.tensor([[True] * 7 + [False] * 5])}),
        ],
    ),
    Explain(
        prompt="With g = 1 SelfExtend is plain RoPE attention, for every w. Check it and say why.",
        hints=["Compare `se.self_extend_attention(q, k, v, 1, w)` with `se.rope_attention(q, k, v)` for a few w.",
               "With g = 1: p // 1 = p, and the shift w - w // 1 is 0. What are the grouped logits then?"],
    ),
    Explain(
        prompt="For g = 3, w = 6 (g divides w) the first grouped position is w in every row. Check it.",
        hints=["`merged_g3 = se.merged_relative_positions(64, 64, 3, 6)`; the first grouped key of row i is j = i - 6.",
               "(i - 6) // 3 = i // 3 - 2 when 3 divides 6."],
    ),
    Function(
        prompt="Write `merge_logits(neighbor, grouped, distance, window)`: Algorithm 1's `where(mask, ngb_attn, g_attn)`.",
        names=("merge_logits",),
        starter="def merge_logits(neighbor, grouped, distance, window):\n"
                "    # neighbor, grouped: logits [nq, nk]; distance: i - j [nq, nk]. Return the merged logits.\n"
                "    return ____",
        answer=_merge,
        cases=_merge_cases,
        hints=["Merging is a replacement: every entry takes *one* of the two logits, chosen by the distance.",
               "`torch.where(distance >= window, grouped, neighbor)`."],
        wrong=[
            Wrong("at the window edge i - j = w the grouped logit is used: the neighbor window is i - j < w, "
                  "so group when i - j >= w (you used >).",
                  {"merge_logits": lambda n, g, d, w: torch.where(d > w, g, n)}),
            Wrong("the two are swapped: *near* keys (i - j < w) keep the neighbor logit, far keys take the grouped one.",
                  {"merge_logits": lambda n, g, d, w: torch.where(d >= w, n, g)}),
            Wrong("SelfExtend replaces a logit, it does not add the two: each (query, key) pair uses exactly one of them.",
                  {"merge_logits": lambda n, g, d, w: n + g}),
        ],
    ),
    Function(
        prompt="Write `selfextend_attention(q, k, v, g, w)` from Algorithm 1 and the package's `apply_rope`.",
        names=("selfextend_attention",),
        starter="def selfextend_attention(q, k, v, g, w):\n"
                "    # q, k, v [1, 1, N, d], float64. Algorithm 1: neighbor and grouped logits, merge, one softmax.\n"
                "    return ____",
        answer=_reference,
        cases=_attention_cases,
        tolerance=1e-9,
        hints=["Follow the cells of this notebook: `se.apply_rope` at `pos` and at `pos // g + shift` / `pos // g`, "
               "logits `q @ k.transpose(-1, -2) / math.sqrt(d)`, `torch.where`, causal mask, softmax, `@ v`.",
               "shift = w - w // g (integer division); future keys (j > i) get -inf before the softmax."],
        wrong=[
            Wrong("the logits are not scaled: divide q·k by sqrt(d) (`/ math.sqrt(q.shape[-1])`).",
                  {"selfextend_attention": lambda q, k, v, g, w: mistakes.algorithm1(q, k, v, g, w, scaled=False)}),
            Wrong("at the window edge i - j = w the grouped logit is used: group when i - j >= w, not > w.",
                  {"selfextend_attention": lambda q, k, v, g, w: mistakes.algorithm1(q, k, v, g, w, strict=True)}),
            Wrong("the grouped query positions need the shift w - w // g (Algorithm 1: s_g_pos = g_pos + shift).",
                  {"selfextend_attention": lambda q, k, v, g, w: mistakes.algorithm1(q, k, v, g, w, shift="none")}),
            Wrong("the shift w - w/g is fractional when g does not divide w: positions are integers, use w - w // g.",
                  {"selfextend_attention": lambda q, k, v, g, w: mistakes.algorithm1(q, k, v, g, w, shift="float")}),
        ],
        errors=[("integer dtype", "positions must be integers: use // (floor division), also in the shift w - w // g")],
    ),
]
