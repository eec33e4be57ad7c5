"""llama.cpp's SelfExtend (``--grp-attn-n`` = g, ``--grp-attn-w`` = w): its KV-cache schedule as position maps.

llama.cpp does not evaluate Algorithm 1. It keeps one rotated key per token and, once a block of
tokens is complete, rewrites the block's cached positions p -> p // g (``llama_kv_cache_seq_div``)
and shifts the later ones down (``llama_kv_cache_seq_add``); ``kv_shift`` replays both examples on
a tiny cache. For a token i decoded while the first C tokens are compressed (C = K m: K blocks of
m tokens) the cache holds

    keys of compressed blocks (j < C):    j // g                region 1
    keys of the block being filled:       C / g + (j - C)       region 0, exact distances
    the query:                            C / g + (i - C)       in both regions

(m = w in ``examples/main`` read token by token, its batch when that is a multiple of w; m = the
batch in ``examples/passkey``). So the pair is grouped iff the key lies in an earlier block (region
= K(i) - K(j) >= 1, like Dual Chunk Attention's chunk index), the neighbor window is the rest of the
current block (1 to m keys, not a sliding w), and the grouped query sits at C / g + (i - C) instead
of the paper's  i // g + w - w // g  ("shift = w_size - w_size // g_size", Algorithm 1). With m in
the role of w they agree exactly for the last token of each block only (i = C + m - 1, g dividing
m): the paper's  (C + m - 1) // g + m - m / g = C / g + m - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_non_negative_int, check_positive_int
from .base import PositionMap


class _BlockShift(PositionMap):
    """Shared by both examples: K(p) compressed blocks of ``block`` tokens when token p is decoded."""

    def compressed_blocks(self, positions: torch.Tensor) -> torch.Tensor:
        """K(p): how many blocks are grouped in the cache when token p is decoded."""
        raise NotImplementedError

    def block(self) -> int:
        """m, the tokens per compressed block."""
        raise NotImplementedError

    def decoded_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """C / g + (p - C), C = K(p) m: where token p is decoded (its query, and its key until compressed)."""
        k, m = self.compressed_blocks(positions), self.block()
        return k * (m // self.group_size) + positions - k * m

    def coordinates(self, positions):
        return self.compressed_blocks(positions)

    def thresholds(self) -> tuple[int, ...]:
        return (1,)  # an earlier (compressed) block

    def region_positions(self, positions):
        own = self.decoded_positions(positions)
        return [(own, own), (own, positions // self.group_size)]  # "p // g" once the block is divided

    def _largest(self, candidates: set[int]) -> float:
        """The largest relative position among queries ``candidates`` (each against key 0: a(i) - 0)."""
        return float(self.decoded_positions(torch.tensor(sorted(t for t in candidates if t >= 0))).max())


def _straddling_batch(prompt: int, batch: int, window: int) -> int | None:
    """The first prompt batch start s whose batch [s, e) has a multiple of window inside (s, e), e not one."""
    if window % batch == 0:  # batches tile the blocks
        return None
    last = (prompt - 1) // batch * batch if prompt else 0
    starts = range(last, prompt, batch) if batch % window == 0 else range(0, prompt, batch)  # full batches end on one
    for s in starts:
        e = min(s + batch, prompt)
        if (e - 1) // window > s // window and e % window:
            return s
    return None


@dataclass(frozen=True)
class LlamaCppSelfExtend(_BlockShift):
    """llama.cpp ``examples/main`` with ``--grp-attn-n g --grp-attn-w w -b batch_size`` (``main.cpp``, 2025).

    Schedule ("context extension via Self-Extend"): before every decode call, each complete block of
    w tokens is compressed (``ga_i`` counts the grouped positions, ``n_past`` is the next free one).
    The prompt (the first ``prompt_length`` tokens, default all) is decoded in batches of
    ``batch_size``, every generated token in a call of its own; a batch starting at token s sees
    K = s // w compressed blocks, so while a prompt is read the schedule depends on the batch size.

    The map: K(p) = (first token of p's decode call) // w, i.e. (p // batch_size * batch_size) // w
    for a prompt token and p // w for a generated one. Covered exactly (checked against
    ``kv_shift.replay_main``) whenever no prompt batch [s, e) holds a multiple of w inside (s, e)
    without ending on one:
    - batch_size divides w (``batch_size=1``: every token decoded alone): K(p) = p // w, prompt and
      generated tokens alike; the neighbor window is the rest of the current w-block;
    - w divides batch_size: a prompt token's block is its batch; with prompt_length given, its last
      batch must end on a multiple of w or hold at most w tokens;
    - any other batch_size with a prompt_length short enough that no batch crosses a block.
    Not covered (ValueError): a batch that crosses a block boundary without ending on one. Its later
    tokens are decoded with the complete block before them still exact, and the next call sees that
    block divided: keys j' < j both exact for query j, j exact for a later query i, yet j' grouped
    for i, which no rule "K(i) - K(j) >= 1" with integer K gives. Also not modelled: llama.cpp's
    context shifting (g = 1 takes that path instead) and prompt-cache session reuse.
    Departs from Algorithm 1 (token by token): query i of block K = i // w sits at K w / g + i mod w,
    not i // g + w - w // g, and its exact keys are those of its own block, i mod w + 1 of them, not
    the last w; the two agree for i mod w = w - 1 only (prompt batches a multiple of w: read "batch"
    for "block"). Requires w % g == 0 (llama.cpp asserts "grp_attn_w must be a multiple of grp_attn_n").
    """

    group_size: int  # g, ga_n (--grp-attn-n)
    window: int  # w, ga_w (--grp-attn-w)
    batch_size: int = 2048  # n_batch (-b), llama.cpp's default
    prompt_length: int | None = None  # tokens read as the prompt; None: all of them

    name = "llama.cpp SelfExtend"

    def __post_init__(self):
        g = check_positive_int("group_size", self.group_size)
        w = check_positive_int("window", self.window)
        b = check_positive_int("batch_size", self.batch_size)
        if w % g:
            raise ValueError(f"window must be a multiple of group_size ({g}) (llama.cpp: ga_w % ga_n == 0), got {w}")
        if self.prompt_length is None:
            if w % b and b % w:  # some batch would run past a block boundary
                raise ValueError(
                    f"batch_size must divide window ({w}) or be a multiple of it (prompt_length=None), got {b}"
                )
            return
        n = check_non_negative_int("prompt_length", self.prompt_length)
        start = _straddling_batch(n, b, w)
        if start is not None:
            raise ValueError(
                f"batch_size ({b}) and prompt_length ({n}) must not put a prompt batch across a multiple of window "
                f"({w}) unless it ends on one; batch [{start}, {min(start + b, n)}) does"
            )

    def block(self) -> int:
        return self.window

    def compressed_blocks(self, positions: torch.Tensor) -> torch.Tensor:
        """K(p) = (start of p's decode call) // w: the prompt's batches, then one call per generated token."""
        prompt = positions // self.batch_size * self.batch_size // self.window
        if self.prompt_length is None:
            return prompt
        return torch.where(positions < self.prompt_length, prompt, positions // self.window)

    def largest_relative_position(self, seq_len: int) -> float:
        """max a(i) over the tokens that end a stretch of constant K: a(i) - 0 is the largest of row i.

        a(i) = C / g + (i - C) grows by 1 while K stays, and the stretch-end values grow with K in each
        phase (prompt, generation), so the last query and the end of the stretch before it suffice.
        """
        n = check_positive_int("seq_len", seq_len)
        w, b = self.window, self.batch_size
        prompt = n if self.prompt_length is None else min(n, self.prompt_length)
        if w % b == 0 or b % w == 0:  # prompt blocks of max(b, w) tokens
            span = max(b, w)
            ends = {prompt - 1, (prompt - 1) // span * span - 1}
        else:  # a short prompt whose batches stay inside blocks: the end of every batch
            ends = {min(s + b, prompt) - 1 for s in range(0, prompt, b)}
        return self._largest(ends | {n - 1, (n - 1) // w * w - 1})

    @property
    def label(self) -> str:
        return f"llama.cpp main g={self.group_size} w={self.window} b={self.batch_size}"


@dataclass(frozen=True)
class LlamaCppPasskey(_BlockShift):
    """llama.cpp ``examples/passkey`` with ``--grp-attn-n g -b batch_size`` (``passkey.cpp``, 2025).

    Schedule ("fill the KV cache"): the prompt is decoded in batches of ``batch_size`` (2048 by
    default); before each batch but the first, the previous batch's positions are divided by g ("we
    compress the position from the last batch by a factor of n_grp"). The block is the batch (there
    is no window flag): K(p) = p // batch_size. The answer tokens after ``prompt_length`` are decoded
    one by one at the next positions without further compression, so they extend the last batch's
    exact block: K(p) = (prompt_length - 1) // batch_size.
    Covered exactly (checked against ``kv_shift.replay_passkey``): any prompt in the example's first
    loop (up to n_ctx_train * g tokens). Not covered: its second loop, which discards tokens.
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

    def block(self) -> int:
        return self.batch_size

    def compressed_blocks(self, positions: torch.Tensor) -> torch.Tensor:
        """K(p) = p's batch index; answer tokens stay in the prompt's last batch."""
        if self.prompt_length is not None:
            positions = torch.clamp(positions, max=self.prompt_length - 1)
        return positions // self.batch_size

    def largest_relative_position(self, seq_len: int) -> float:
        """max(a(N - 1), a(last token of the batch before)), a(i) = K b / g + (i - K b) against key 0."""
        n = check_positive_int("seq_len", seq_len)
        last = n - 1 if self.prompt_length is None else min(n, self.prompt_length) - 1
        return self._largest({n - 1, last // self.batch_size * self.batch_size - 1})

    @property
    def label(self) -> str:
        return f"llama.cpp passkey g={self.group_size} b={self.batch_size}"
