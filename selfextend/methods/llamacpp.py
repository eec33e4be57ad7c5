"""llama.cpp's SelfExtend (``--grp-attn-n`` = g, ``--grp-attn-w`` = w): its KV-cache schedule as position maps.

llama.cpp does not evaluate Algorithm 1. It keeps one rotated key per token and, once a block of
tokens is complete, rewrites the block's cached positions p -> p // g (``llama_kv_cache_seq_div``)
and shifts the later ones down (``llama_kv_cache_seq_add``); ``kv_shift`` replays both examples on
a tiny cache. Let C(i) be the number of tokens already compressed (a multiple of g) when token i is
decoded: it is fixed per decode call, by the blocks complete before the call starts. Then token i's
query and the keys it sees sit at

    query i:                          C(i) / g + (i - C(i))
    key j <  C(i) (compressed):       j // g                      region 1, "grouped"
    key j >= C(i) (not yet):          C(i) / g + (j - C(i))       region 0, exact distance i - j

so the pair is grouped iff  C(i) - j >= 1:  the query's coordinate is C(i), a key's its index, and
the existing region kernel runs it (threshold 1). The neighbor window is the part of the cache not
yet compressed (anything from 1 to a block plus a batch of keys, not a sliding w), and the grouped
query sits at C(i) / g + (i - C(i)) instead of the paper's  i // g + w - w // g  ("shift = w_size -
w_size // g_size", Algorithm 1). With the block m in the role of w they agree exactly for the last
token of each block only (C(i) = i + 1 - m, g dividing m): (C + m - 1) // g + m - m / g = C / g + m - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_non_negative_int, check_positive_int
from .base import PositionMap


class _BlockShift(PositionMap):
    """Shared by both examples: C(p), the tokens compressed when token p is decoded, decides everything."""

    def compressed(self, positions: torch.Tensor) -> torch.Tensor:
        """C(p): how many tokens have divided positions in the cache when token p is decoded."""
        raise NotImplementedError

    def decoded_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """C / g + (p - C): where token p is decoded (its query, and its key until it is compressed)."""
        c = self.compressed(positions)
        return c // self.group_size + positions - c

    def query_coordinates(self, positions):
        return self.compressed(positions)  # key j (coordinate j) is grouped for query i iff C(i) - j >= 1

    def thresholds(self) -> tuple[int, ...]:
        return (1,)

    def region_positions(self, positions):
        # region 0: exact distances (both sides shifted by the same amount); region 1: "p // g" once divided
        return [(positions, positions), (self.decoded_positions(positions), positions // self.group_size)]

    def largest_relative_position(self, seq_len: int) -> float:
        """max over queries of C(i) / g + (i - C(i)), its distance to key 0 (at 0 in both regions): O(N), no N x N."""
        n = check_positive_int("seq_len", seq_len)
        return float(self.decoded_positions(torch.arange(n)).max())


@dataclass(frozen=True)
class LlamaCppSelfExtend(_BlockShift):
    """llama.cpp ``examples/main`` with ``--grp-attn-n g --grp-attn-w w -b batch_size`` (``main.cpp``, 2025).

    Schedule ("context extension via Self-Extend"): before every decode call, each complete block of
    w tokens is compressed (``ga_i`` counts the grouped positions, ``n_past`` is the next free one).
    The prompt (the first ``prompt_length`` tokens, default all) is decoded in batches of
    ``batch_size``, every generated token in a call of its own. A call starting at token s sees
    C = (s // w) w compressed tokens, so

        C(p) = (p // batch_size * batch_size) // w * w     a prompt token (its batch's start decides)
        C(p) = p // w * w                                  a generated token

    While a prompt is read the schedule depends on the batch size: with the default -b 2048 and
    w = 1024, a whole batch of 2048 keys is exact for its last token. Exact for every batch size and
    prompt length (checked pair by pair against ``kv_shift.replay_main``). Not modelled: llama.cpp's
    context shifting (g = 1 takes that path instead) and prompt-cache session reuse.
    Departs from Algorithm 1 (token by token, batch_size dividing w): query i sits at
    (i // w) w / g + i mod w, not i // g + w - w // g, and its exact keys are those of its own
    block, i mod w + 1 of them, not the last w; the two agree for i mod w = w - 1 only.
    Requires w % g == 0 (llama.cpp asserts "grp_attn_w must be a multiple of grp_attn_n").
    """

    group_size: int  # g, ga_n (--grp-attn-n)
    window: int  # w, ga_w (--grp-attn-w)
    batch_size: int = 2048  # n_batch (-b), llama.cpp's default
    prompt_length: int | None = None  # tokens read as the prompt; None: all of them

    name = "llama.cpp SelfExtend"

    def __post_init__(self):
        g = check_positive_int("group_size", self.group_size)
        w = check_positive_int("window", self.window)
        check_positive_int("batch_size", self.batch_size)
        if w % g:
            raise ValueError(f"window must be a multiple of group_size ({g}) (llama.cpp: ga_w % ga_n == 0), got {w}")
        if self.prompt_length is not None:
            check_non_negative_int("prompt_length", self.prompt_length)

    def compressed(self, positions: torch.Tensor) -> torch.Tensor:
        """C(p) = (start of p's decode call) // w * w: the prompt's batches, then one call per generated token."""
        w = self.window
        prompt = positions // self.batch_size * self.batch_size // w * w
        if self.prompt_length is None:
            return prompt
        return torch.where(positions < self.prompt_length, prompt, positions // w * w)

    @property
    def label(self) -> str:
        return f"llama.cpp main g={self.group_size} w={self.window} b={self.batch_size}"


@dataclass(frozen=True)
class LlamaCppPasskey(_BlockShift):
    """llama.cpp ``examples/passkey`` with ``--grp-attn-n g -b batch_size`` (``passkey.cpp``, 2025).

    Schedule ("fill the KV cache"): the prompt is decoded in batches of ``batch_size`` (2048 by
    default); before each batch but the first, the previous batch's positions are divided by g ("we
    compress the position from the last batch by a factor of n_grp"). The block is the batch (there
    is no window flag): C(p) = p // batch_size * batch_size. The answer tokens after
    ``prompt_length`` are decoded one by one at the next positions without further compression, so
    they extend the last batch's exact block: C(p) = (prompt_length - 1) // batch_size * batch_size.
    Exact (checked against ``kv_shift.replay_passkey``) for any prompt in the example's first loop
    (up to n_ctx_train * g tokens). Not covered: its second loop, which discards tokens.
    Reading a prompt it is ``LlamaCppSelfExtend(g, w, batch_size)`` for any w dividing the batch;
    they part at the answer, which ``examples/main`` keeps compressing every w tokens.
    Departs from Algorithm 1: query i of batch K = i // b sits at K b / g + i mod b, not
    i // g + w - w // g, and its exact keys are those of its own batch (i mod b + 1), not the last w;
    with w = b the two agree for the last token of each batch only. 16,384 tokens, g = 8, default
    batch: the last query sits at 3,839 and 2,048 keys keep exact distances (Algorithm 1 with
    w = 1,024: 2,943 and 1,024). Requires batch_size % g == 0 (the example asserts "n_batch must be
    divisible by n_grp").
    """

    group_size: int  # g, n_grp (--grp-attn-n)
    batch_size: int = 2048  # n_batch (-b)
    prompt_length: int | None = None  # tokens read as the prompt; None: all of them

    name = "llama.cpp passkey"

    def __post_init__(self):
        g = check_positive_int("group_size", self.group_size)
        b = check_positive_int("batch_size", self.batch_size)
        if b % g:
            raise ValueError(f"batch_size must be a multiple of group_size ({g}) (n_batch % n_grp == 0), got {b}")
        if self.prompt_length is not None:
            check_positive_int("prompt_length", self.prompt_length)

    def compressed(self, positions: torch.Tensor) -> torch.Tensor:
        """C(p) = the start of p's batch; answer tokens stay in the prompt's last batch."""
        if self.prompt_length is not None:
            positions = torch.clamp(positions, max=self.prompt_length - 1)
        return positions // self.batch_size * self.batch_size

    @property
    def label(self) -> str:
        return f"llama.cpp passkey g={self.group_size} b={self.batch_size}"
