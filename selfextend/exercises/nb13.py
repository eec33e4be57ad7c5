"""Exercises of notebook 13: SelfExtend as llama.cpp runs it (its KV-cache shifts as position maps)."""
from __future__ import annotations

from .core import Explain, Value, Wrong


def _token_10() -> dict:
    """Token 10's query position in examples/main, g = 2, w = 4, one token per decode call (hand trace)."""
    compressed = 10 // 4 * 4  # blocks [0, 4) and [4, 8) are divided before token 10 is decoded: C = 8
    return {"query_position": compressed // 2 + (10 - compressed)}


def _last_query_16k() -> dict:
    """The last query of 16,384 tokens: llama.cpp's passkey example (g = 8, batch 2,048) and Algorithm 1 (w = 1,024)."""
    n, g = 16_384, 8
    compressed = (n - 1) // 2048 * 2048  # the seven batches before the last one
    return {"pos_llamacpp": compressed // g + (n - 1 - compressed), "pos_paper": (n - 1) // g + 1024 - 1024 // g}


def _exact_keys() -> dict:
    """Keys at exact distances for the last token of a 16,384-token prompt, examples/main, w = 1,024, -b 4096."""
    n, w, b = 16_384, 1024, 4096
    compressed = (n - 1) // b * b // w * w  # the last batch starts at 12,288: blocks before it are divided
    return {"n_exact": n - compressed}


EXERCISES = [
    Value(
        prompt="Replay llama.cpp's examples/main by hand with g = 2, w = 4 and one token per decode call: at which "
               "position is token 10's query rotated?",
        names=("query_position",),
        starter="query_position = ____  # blocks of w = 4 tokens are divided by g = 2 once complete",
        answer=_token_10,
        hints=["Before token 10 is decoded, which blocks of 4 are complete? Their 8 tokens sit at 0, 0, 1, 1, 2, 2, 3, 3.",
               "The tokens not yet divided follow the grouped ones: C / g + (i - C) with C = 8."],
        wrong=[
            Wrong("that is Algorithm 1's query position (i // g + w - w // g); llama.cpp has no constant shift.",
                  {"query_position": 7}),
            Wrong("that is i // g, the grouped *key* position; the query keeps its offset inside the block.",
                  {"query_position": 5}),
            Wrong("that is the ordinary position: the first two blocks were divided before token 10 came.",
                  {"query_position": 10}),
        ],
    ),
    Value(
        prompt="A 16,384-token prompt read by llama.cpp's passkey example with g = 8 and its default batch of 2,048: "
               "the last token's query position (its largest relative position). And Algorithm 1's with w = 1,024.",
        names=("pos_llamacpp", "pos_paper"),
        starter="pos_llamacpp = ____  # C / g + (i - C), C = the tokens of the batches before the last one\n"
                "pos_paper = ____     # i // g + w - w // g",
        answer=_last_query_16k,
        hints=["The last token is i = 16,383, in batch 7: C = 7 x 2,048 = 14,336.",
               "pos_llamacpp = 14336 / 8 + (16383 - 14336); pos_paper = 16383 // 8 + 1024 - 128."],
        wrong=[Wrong("the two are swapped: llama.cpp's query keeps a whole batch of exact offsets, so it sits higher.",
                     {"pos_llamacpp": 2943, "pos_paper": 3839})],
    ),
    Value(
        prompt="examples/main with --grp-attn-n 8 --grp-attn-w 1024 and -b 4096 reads a 16,384-token prompt. How "
               "many keys does the last prompt token see at exact distances (not yet divided)?",
        names=("n_exact",),
        starter="n_exact = ____  # blocks are divided only before a decode call: here, before each batch",
        answer=_exact_keys,
        hints=["The last batch starts at token 12,288; every complete block of 1,024 before that start is divided.",
               "Nothing inside the batch is divided while it is decoded: its last token sees the whole batch exact."],
        wrong=[
            Wrong("that is w, the paper's neighbor window: llama.cpp divides only between decode calls.",
                  {"n_exact": 1024}),
            Wrong("that is the default batch of 2,048; here -b is 4,096.", {"n_exact": 2048}),
        ],
    ),
    Explain(
        prompt="You serve an 8k-context GGUF model with llama.cpp and want 32k-token prompts. Which --grp-attn-n, "
               "--grp-attn-w and -b would you pick, and why does the batch size matter?",
        hints=["The reach is Eq. 4 with the block m in place of w: (L - m) g + m, where m is w when -b divides w, "
               "and the batch when -b is a multiple of w.",
               "Section 5 of the notebook: the block also sets how many exact keys a token keeps (1 to m)."],
    ),
]
