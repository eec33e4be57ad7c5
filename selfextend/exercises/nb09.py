"""Exercises of notebook 09: fast exact SelfExtend attention."""
from __future__ import annotations

import torch

from .. import fast_attention
from .core import Case, Explain, Function, Value, Wrong


def _calls() -> dict:
    blocks = fast_attention.band_plan(16384, 16384, 1024)
    return {"prefill_calls": sum(len(block) for block in blocks),
            "band_calls": sum(piece.shape == "band" for block in blocks for piece in block)}


def _merge(out1, lse1, out2, lse2):
    """Answer key: the kernel's own fold (``fast_attention._fold``)."""
    return fast_attention._fold((out1, lse1), (out2, lse2))


def _merge_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(9)
    cases = []
    for size, offset in ((5, 0.0), (3, 10.0), (4, 1000.0)):
        logits = offset + 3 * torch.randn(2 * size, dtype=torch.float64, generator=generator)
        values = torch.randn(2 * size, 4, dtype=torch.float64, generator=generator)
        parts = []
        for keys in (slice(0, size), slice(size, 2 * size)):
            parts += [torch.softmax(logits[keys], 0) @ values[keys], torch.logsumexp(logits[keys], 0)]
        cases.append(Case(tuple(parts), f"two parts of {size} keys with logits near {offset:g}"))
    return cases


def _naive_merge(out1, lse1, out2, lse2):
    """The overflowing way: exponentiate the log-sum-exps themselves."""
    mass1, mass2 = lse1.exp(), lse2.exp()
    return (mass1 * out1 + mass2 * out2) / (mass1 + mass2), (mass1 + mass2).log()


def _not_finite(outputs) -> bool:
    return any(not bool(torch.isfinite(torch.as_tensor(part)).all()) for out in outputs for part in out)


EXERCISES = [
    Value(
        prompt="Fused calls of the banded schedule for a 16,384-token prefill (w = 1024), and how many are band calls.",
        names=("prefill_calls", "band_calls"),
        starter="prefill_calls = ____  # fused calls for a 16,384-token prefill, w = 1024 (fast_attention.band_plan)\n"
                "band_calls = ____     # of them, batched neighbor-band calls (shape \"band\")",
        answer=_calls,
        hints=["`blocks = fast_attention.band_plan(16384, 16384, 1024)` returns, per block of query rows, its "
               "pieces; each piece is one fused call.",
               "`sum(len(block) for block in blocks)`, and count the pieces with `piece.shape == \"band\"`."],
        wrong=[
            Wrong("you counted the blocks, not the calls: a block is up to three pieces (grouped full, grouped "
                  "causal, the band), each one call.",
                  {"prefill_calls": len(fast_attention.band_plan(16384, 16384, 1024)), "band_calls": _calls()["band_calls"]}),
            Wrong("one band call per block of rows, not per run of rows: the runs of a block are the batch of one "
                  "fused call.", {"prefill_calls": _calls()["prefill_calls"], "band_calls": (16384 - 1024) // 32}),
        ],
    ),
    Explain(
        prompt="Show that the log-sum-exp merge stays exact for logits near 1000, where exp(x) overflows. Why?",
        hints=["`big_logits = 1000 + torch.randn(10, dtype=torch.float64)`; `big_logits.exp()` is inf.",
               "The merge only exponentiates differences l_s - l <= 0, and logsumexp subtracts the maximum."],
    ),
    Explain(
        prompt="General schedule: cells computed but masked, for 1,024 tokens, w = 256, query chunks 32, 128, 512.",
        hints=["Loop over `fast_attention.plan(positions, positions, w, query_chunk=C)`: (start, end, segments).",
               "A mixed segment computes both logits: count it twice."],
    ),
    Explain(
        prompt="A right-padded batch: the fast path still equals the reference, and no output is NaN.",
        hints=["`keep[0, n - pad:] = False` masks the last keys of row 0; combine with `se.causal_mask(n)`.",
               "Call `se.merged_attention(..., attn_mask=mask, implementation=impl)` for both implementations."],
    ),
    Function(
        prompt="Write `merge_parts(out1, lse1, out2, lse2)`: the softmax over two disjoint key sets from their parts.",
        names=("merge_parts",),
        starter="def merge_parts(out1, lse1, out2, lse2):\n"
                "    # out_s: softmax-weighted mean of v over key set s [dv]; lse_s: log-sum-exp of its logits.\n"
                "    # Return (out, lse) for the union of the two sets.\n"
                "    return ____",
        answer=_merge,
        cases=_merge_cases,
        tolerance=1e-9,
        hints=["l = log(e^l1 + e^l2) (`torch.logaddexp`), and each part weighs e^(l_s - l).",
               "`lse = torch.logaddexp(lse1, lse2); return out1 * (lse1 - lse).exp() + out2 * (lse2 - lse).exp(), lse`."],
        wrong=[
            Wrong("inf or NaN for logits near 1000: exp(1000) overflows. Exponentiate only differences l_s - l <= 0 "
                  "(`torch.logaddexp` for l).", {"merge_parts": _naive_merge}, when=_not_finite),
            Wrong("the parts are not equally important: weigh each by its share of the total mass, e^(l_s - l).",
                  {"merge_parts": lambda o1, l1, o2, l2: ((o1 + o2) / 2, torch.logaddexp(l1, l2))}),
            Wrong("the log of a sum is not the sum of the logs: l = log(e^l1 + e^l2) = `torch.logaddexp(l1, l2)`.",
                  {"merge_parts": lambda o1, l1, o2, l2: (_merge(o1, l1, o2, l2)[0], l1 + l2)}),
        ],
    ),
]
