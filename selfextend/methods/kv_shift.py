"""A tiny llama.cpp KV cache: one integer position per cached token, replayed through SelfExtend's shifts.

llama.cpp runs SelfExtend by rewriting the positions of tokens already in its KV cache (the cached
keys are re-rotated to match) with two calls, documented in ``llama.h``:

    llama_kv_cache_seq_add(ctx, seq, p0, p1, delta)  "Adds relative position delta to all tokens
        that belong to the specified sequence and have positions in [p0, p1)"
    llama_kv_cache_seq_div(ctx, seq, p0, p1, d)      "Integer division of the positions by factor
        of d > 1" (same range [p0, p1))

(renamed ``llama_kv_self_seq_*`` and later ``llama_memory_seq_*``; p0 < 0 means 0, p1 < 0 means no
upper end). A key is hidden from a query when its cached position is larger than the query's
("mask future tokens": ``p0 > p1`` in the KV cache's mask), so causality goes by position.

``replay_main`` and ``replay_passkey`` drive this cache the way llama.cpp's two examples do
(``examples/main/main.cpp``, ``examples/passkey/passkey.cpp``, early 2025) and record, for every
decode call, the query position of each token decoded and the position of every cached key. This is
the independent ground truth the position maps of ``llamacpp`` are checked against (plain Python
lists, one snapshot of the cache per decode call: meant for checks, not for long token-by-token runs).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_non_negative_int, check_positive_int


class KVCache:
    """The cells of one sequence: ``positions[t]`` is token t's current position, None once freed.

    ``divided[t]`` records whether a ``seq_div`` by d > 1 has touched token t (its key is grouped).
    """

    def __init__(self) -> None:
        self.positions: list[int | None] = []
        self.divided: list[bool] = []

    @staticmethod
    def _range(p0: int, p1: int) -> tuple[int, float]:
        """llama.cpp's convention: p0 < 0 means 0, p1 < 0 means no upper end."""
        return max(p0, 0), float("inf") if p1 < 0 else p1

    def seq_add(self, p0: int, p1: int, delta: int) -> None:
        """Add ``delta`` to every position in [p0, p1); a cell pushed below 0 is freed (as llama.cpp does)."""
        if delta == 0:  # the public call returns at once
            return
        low, high = self._range(p0, p1)
        for t, p in enumerate(self.positions):
            if p is not None and low <= p < high:
                self.positions[t] = p + delta if p + delta >= 0 else None

    def seq_div(self, p0: int, p1: int, d: int) -> None:
        """Integer-divide every position in [p0, p1) by ``d`` (positions are >= 0: C's / is the floor)."""
        d = check_positive_int("d", d)
        if d == 1:  # the public call returns at once
            return
        low, high = self._range(p0, p1)
        for t, p in enumerate(self.positions):
            if p is not None and low <= p < high:
                self.positions[t] = p // d
                self.divided[t] = True

    def pos_max(self) -> int:
        """The largest cached position, -1 for an empty cache (``llama_kv_cache_seq_pos_max``)."""
        return max((p for p in self.positions if p is not None), default=-1)

    def decode(self, count: int, start: int) -> Decode:
        """Cache the next ``count`` tokens at start, start + 1, ... and record what they see."""
        first = len(self.positions)
        self.positions.extend(range(start, start + count))
        self.divided.extend([False] * count)
        return Decode(first, tuple(range(start, start + count)), tuple(self.positions), tuple(self.divided))


@dataclass(frozen=True)
class Decode:
    """One ``llama_decode`` call: tokens first .. first + len(queries) - 1 and the cache they attend."""

    first: int
    queries: tuple[int, ...]  # the position of each token decoded (its query and its new key)
    keys: tuple[int | None, ...]  # every cached token's position during the call, this call's tokens included
    divided: tuple[bool, ...]  # whether each cached key has been divided (grouped) by then


@dataclass(frozen=True)
class Replay:
    """Every decode call of one run, in order: what each token's query saw when it was computed."""

    calls: tuple[Decode, ...]

    @property
    def n_tokens(self) -> int:
        """The number of tokens decoded."""
        last = self.calls[-1]
        return last.first + len(last.queries)

    def call_of(self, token: int) -> Decode:
        """The decode call that computed ``token``."""
        token = check_non_negative_int("token", token)
        for call in self.calls:
            if call.first <= token < call.first + len(call.queries):
                return call
        raise ValueError(f"token must be in [0, {self.n_tokens - 1}], got {token}")

    def query_position(self, token: int) -> int:
        """The position ``token``'s query was rotated to."""
        call = self.call_of(token)
        return call.queries[token - call.first]

    def attended(self, token: int) -> list[tuple[int, int]]:
        """(key token, key position) of every cached key the query may see: position <= its own."""
        call = self.call_of(token)
        query = call.queries[token - call.first]
        return [(j, p) for j, p in enumerate(call.keys) if p is not None and p <= query]

    def grouped(self, token: int) -> list[int]:
        """The key tokens ``token``'s query sees divided (grouped attention's keys)."""
        call = self.call_of(token)
        return [j for j, _ in self.attended(token) if call.divided[j]]

    def relative_positions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values long, attended bool, grouped bool), each [N, N]: query minus key position per token pair."""
        n = self.n_tokens
        values = torch.zeros(n, n, dtype=torch.long)
        attended = torch.zeros(n, n, dtype=torch.bool)
        grouped = torch.zeros(n, n, dtype=torch.bool)
        for t in range(n):
            call = self.call_of(t)
            query = call.queries[t - call.first]
            for j, p in self.attended(t):
                values[t, j] = query - p
                attended[t, j] = True
                grouped[t, j] = call.divided[j]
        return values, attended, grouped


def _check_run(n_tokens: int, group_size: int, batch_size: int, prompt_length: int | None) -> tuple[int, int]:
    """Validate the common arguments; return (n_tokens, the number of prompt tokens)."""
    n_tokens = check_positive_int("n_tokens", n_tokens)
    check_positive_int("group_size", group_size)
    check_positive_int("batch_size", batch_size)
    if prompt_length is None:
        return n_tokens, n_tokens
    prompt_length = check_non_negative_int("prompt_length", prompt_length)
    if prompt_length > n_tokens:
        raise ValueError(f"prompt_length must be in [0, n_tokens] = [0, {n_tokens}], got {prompt_length}")
    return n_tokens, prompt_length


def replay_main(
    n_tokens: int, group_size: int, window: int, batch_size: int = 2048, prompt_length: int | None = None
) -> Replay:
    """``examples/main`` with ``--grp-attn-n group_size --grp-attn-w window -b batch_size``.

    The first ``prompt_length`` tokens (default: all) are the prompt, read in batches of batch_size;
    the others are generated, one per decode call. Before every call the example compresses each
    complete block of ``window`` tokens ("context extension via Self-Extend"); ``ga_i`` counts the
    grouped positions so far, ``n_past`` is the next free position.
    """
    n_tokens, prompt = _check_run(n_tokens, group_size, batch_size, prompt_length)
    g, w = group_size, check_positive_int("window", window)
    if w % g:
        raise ValueError(f"window must be a multiple of group_size ({g}) (llama.cpp: ga_w % ga_n == 0), got {w}")
    cache, calls, n_past, ga_i = KVCache(), [], 0, 0
    # tokens per decode call: the prompt in batches of batch_size, then one generated token per call
    sizes = [min(batch_size, prompt - s) for s in range(0, prompt, batch_size)] + [1] * (n_tokens - prompt)
    for count in sizes:
        while n_past >= ga_i + w:  # a whole block of w exact positions follows the grouped ones
            ib = (g * ga_i) // w  # blocks compressed so far
            bd = (w // g) * (g - 1)  # positions a block gives up when divided
            dd = (w // g) - ib * bd - w
            cache.seq_add(ga_i, n_past, ib * bd)  # back to the token's own index
            cache.seq_div(ga_i + ib * bd, ga_i + ib * bd + w, g)  # the block: p -> p // g
            cache.seq_add(ga_i + ib * bd + w, n_past + ib * bd, dd)  # the rest follows the grouped block
            n_past -= bd
            ga_i += w // g
        calls.append(cache.decode(count, n_past))
        n_past += count
    return Replay(tuple(calls))


def replay_passkey(
    n_tokens: int, group_size: int, batch_size: int = 2048, prompt_length: int | None = None
) -> Replay:
    """``examples/passkey`` with ``--grp-attn-n group_size -b batch_size`` ("fill the KV cache").

    The prompt (the first ``prompt_length`` tokens, default all) is read in batches; before each
    batch but the first, the previous batch's positions are divided by group_size ("we compress the
    position from the last batch by a factor of n_grp"). The answer tokens after the prompt are
    decoded one by one at the next positions, with no further compression. Only the example's first
    loop is replayed: prompts up to its context n_ctx_train * n_grp, where it never discards tokens.
    """
    n_tokens, prompt = _check_run(n_tokens, group_size, batch_size, prompt_length)
    g, n_batch = group_size, batch_size
    if n_batch % g:
        raise ValueError(f"batch_size must be a multiple of group_size ({g}) (the example asserts it), got {n_batch}")
    if prompt < 1:
        raise ValueError(f"prompt_length must be in [1, n_tokens] = [1, {n_tokens}] (passkey reads a prompt), got 0")
    cache, calls, n_past = KVCache(), [], 0
    for start in range(0, prompt, n_batch):  # the first token of each prompt batch
        if start > 0 and g > 1:
            ib = start // n_batch - 1  # the batch to compress (every batch before the last is full)
            bd = (n_batch // g) * (g - 1)
            cache.seq_add(n_past - n_batch, n_past, ib * bd)  # back to the token's own index
            cache.seq_div(n_past - n_batch + ib * bd, n_past + ib * bd, g)
            n_past = cache.pos_max() + 1
        count = min(n_batch, prompt - start)
        calls.append(cache.decode(count, n_past))
        n_past += count
    for _ in range(n_tokens - prompt):  # the answer, one token per call
        calls.append(cache.decode(1, n_past))
        n_past += 1
    return Replay(tuple(calls))
