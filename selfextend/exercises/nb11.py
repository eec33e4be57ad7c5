"""Exercises of notebook 11: a real LLM (SmolLM2-135M) beyond its window."""
from __future__ import annotations

import math
from collections.abc import Mapping

from .. import positions
from .core import Explain, Value, Wrong

L = 8192  # SmolLM2-135M's max_position_embeddings


def _perplexities() -> dict:
    from ..hf.real_results import committed_results

    results = committed_results()
    units, n = results["units"], str(results["settings"]["tokens"])
    return {"ppl_plain": units["loss/plain"]["prefix"][n]["perplexity"],
            "ppl_selfextend": units["loss/selfextend-g8-w1024"]["prefix"][n]["perplexity"]}


class _FromResults(Mapping):
    """A wrong-answer example computed from the committed results when first read (not at import)."""

    def __init__(self, make):
        self._make, self._values = make, None

    def _data(self) -> dict:
        if self._values is None:
            self._values = self._make()
        return self._values

    def __getitem__(self, key):
        return self._data()[key]

    def __iter__(self):
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())


def _swapped() -> dict:
    found = _perplexities()
    return {"ppl_plain": found["ppl_selfextend"], "ppl_selfextend": found["ppl_plain"]}


def _as_nll() -> dict:
    return {name: math.log(value) for name, value in _perplexities().items()}


EXERCISES = [
    Value(
        prompt="Eq. 4 on SmolLM2 (L = 8192): the reach of SelfExtend g = 2, w = 1024, the setting that is too short for 16k.",
        names=("reach_g2",),
        starter="reach_g2 = ____  # (L - w) * g + w for L = 8192, g = 2, w = 1024",
        answer=lambda: {"reach_g2": positions.max_context_length(L, 2, 1024)},
        hints=["Eq. 4: (L - w) * g + w.", "`se.max_context_length(8192, 2, 1024)`."],
        wrong=[
            Wrong("that is L * g: the window keeps its w positions ungrouped, so only L - w are left for the groups.",
                  {"reach_g2": 2 * L}),
            Wrong("that is (L - w) * g without the window's own w tokens added back.", {"reach_g2": (L - 1024) * 2}),
        ],
    ),
    Value(
        prompt="From the committed results: the perplexity of the whole 16k-token input, plain and SelfExtend g = 8, w = 1024.",
        names=("ppl_plain", "ppl_selfextend"),
        starter="ppl_plain = ____       # perplexity of the first N tokens (all of them), unmodified model\n"
                "ppl_selfextend = ____  # the same with SelfExtend g = 8, w = 1024",
        answer=_perplexities,
        hints=["`committed = committed_results()`; the unit of a method is `committed['units']['loss/<method>']`.",
               "`unit['prefix'][str(committed['settings']['tokens'])]['perplexity']`."],
        wrong=[
            Wrong("the two are swapped: the unmodified model is the one that breaks past 8k.", _FromResults(_swapped)),
            Wrong("those are mean NLLs (nats per token); perplexity is exp(NLL).", _FromResults(_as_nll)),
        ],
    ),
    Explain(
        prompt="Grouped attention alone (position ids p // 2) is much worse than plain even at 1k tokens "
               "(perplexity about 68 against 20). Why, for a model this small?",
        hints=["With p // 2, a token and its neighbour share one position: what can a previous-token head no longer tell apart?",
               "Compare the grouped-only curve's first blocks (about 1 nat per token above the others) with SelfExtend's, "
               "whose neighbor window keeps exact positions nearby."],
    ),
    Explain(
        prompt="Live: the loss of the first 1,024 tokens with SelfExtend g = 8 at w = 128, 512 and 1024. Which windows change "
               "it, and by how much? (Four 1,024-token forwards: under half a minute.)",
        hints=["`token_nll(model, ids_1k)` (the first 1,024 token ids of the text) inside `with SelfExtend(model, 8, w):` "
               "for each w.",
               "w = 1024 covers every distance of a 1,024-token input: the model's own logits."],
    ),
]
