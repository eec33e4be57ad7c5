"""Exercises of notebook 12: the paper, figure by figure, on SmolLM2-135M."""
from __future__ import annotations

import torch

from .core import Explain, Value, Wrong
from .nb11 import _FromResults

L = 8192  # SmolLM2-135M's max_position_embeddings
N = 16384  # the loss runs' input length


def _packed_count() -> dict:
    """How many "sequences" transformers finds in position ids p // 2 for 1,024 tokens (its rule, written out)."""
    positions = torch.arange(1024) // 2
    starts = torch.diff(positions, prepend=positions[:1] - 1) != 1  # a new sequence wherever the step is not 1
    return {"n_sequences": int(starts.sum()) + 1}  # ... after the first, which token 0 opens


def _swa_16k() -> dict:
    from ..hf.paper_results import committed_paper_results

    units = committed_paper_results()["units"]
    return {"ppl_swa": units["table1/swa-w4096"]["perplexity_at"][str(N)],
            "ppl_plain": units["table1/plain"]["perplexity_at"][str(N)]}


def _swapped() -> dict:
    found = _swa_16k()
    return {"ppl_swa": found["ppl_plain"], "ppl_plain": found["ppl_swa"]}


def _half_rule() -> dict:
    """The smallest g with w + (N - w) / g below L / 2, for w = 1024."""
    g = 1
    while 1024 + (N - 1024) / g >= L / 2:
        g += 1
    return {"g_half": g}


EXERCISES = [
    Value(
        prompt="The packed-sequence trap: with position ids p // 2 for 1,024 tokens and no attention mask, how many "
               "'sequences' does transformers find (a new one wherever the position does not rise by exactly 1)?",
        names=("n_sequences",),
        starter="n_sequences = ____  # position ids 0, 0, 1, 1, 2, 2, ..., 511, 511",
        answer=_packed_count,
        hints=["Write the rule out: `p = torch.arange(1024) // 2`, then `torch.diff(p, prepend=p[:1] - 1) != 1`.",
               "The first token opens a sequence; then every step of 0 (p[i] == p[i - 1]) opens another."],
        wrong=[
            Wrong("that counts the steps of 1: a new sequence starts where the step is NOT 1.", {"n_sequences": 511}),
            Wrong("close: the first token opens a sequence too.", {"n_sequences": 512}),
            Wrong("that is one sequence: what the model should see, and what an explicit attention mask gives.",
                  {"n_sequences": 1}),
        ],
    ),
    Value(
        prompt="From the committed results (Table 1): the perplexity of the whole 16k-token input with a sliding "
               "window of W = 4,096, and plain's.",
        names=("ppl_swa", "ppl_plain"),
        starter="ppl_swa = ____    # sliding window W = 4096, perplexity of the first 16,384 tokens\n"
                "ppl_plain = ____  # the unmodified model, the same tokens",
        answer=_swa_16k,
        hints=["`paper_units = committed_paper_results()['units']`; Table 1's rows are `paper_units['table1/<method>']`.",
               "`paper_units['table1/swa-w4096']['perplexity_at']['16384']`."],
        wrong=[Wrong("the two are swapped: plain is the one that breaks past 8k.", _FromResults(_swapped))],
    ),
    Value(
        prompt="The official rule of thumb, (1/2 ~ 2/3)·L > w + (N - w)/g, at its strict end: the smallest integer g "
               "with w + (N - w)/g < L/2 for N = 16,384, L = 8,192, w = 1,024.",
        names=("g_half",),
        starter="g_half = ____  # smallest g with 1024 + (16384 - 1024) / g < 8192 / 2",
        answer=_half_rule,
        hints=["Solve for g: (N - w) / g < L/2 - w.", "15,360 / g < 3,072 means g > 5."],
        wrong=[
            Wrong("that satisfies it with equality or not at all: 15360 / 5 = 3072 is not below 3072.", {"g_half": 5}),
            Wrong("that is the 2/3 end of the rule (w + (N - w)/g < 2L/3).", {"g_half": 4}),
            Wrong("that is Eq. 4's bound (w + (N - w)/g <= L), the loosest one.", {"g_half": 3}),
        ],
    ),
    Explain(
        prompt="The sliding window's perplexity stays bounded and flat past L, yet it finds no key that sits more "
               "than W tokens before the question. Why does low perplexity not imply retrieval?",
        hints=["Which tokens does a book's next-token loss depend on most: the last few hundred, or one sentence 10k "
               "tokens back?",
               "Look at which passkey depths the sliding window still answers at 8k and 16k: where is the key then?"],
    ),
]
