"""llama.cpp's SelfExtend: the KV-cache replay against hand traces, the position maps against the replay.

Ground truth: ``kv_shift.replay_main`` / ``replay_passkey`` (llama.cpp's ``examples/main`` and
``examples/passkey`` on a tiny cache of integer positions). The hand traces below were worked out on
paper from the two examples' shift schedules, not printed by the code.
"""
import math

import pytest
import torch

from naive import rotate_pairs
from selfextend.methods import (KVCache, LlamaCppPasskey, LlamaCppSelfExtend, SelfExtend, attention, position_map,
                                replay_main, replay_passkey)
from selfextend.positions import largest_relative_position, merged_relative_positions

# ----------------------------------------------------------------------------------------------
# The cache's two calls


def test_seq_add_and_seq_div_touch_positions_in_p0_p1_only():
    cache = KVCache()
    cache.decode(10, 0)
    cache.seq_add(4, 8, 10)  # [4, 8) + 10
    assert cache.positions == [0, 1, 2, 3, 14, 15, 16, 17, 8, 9]
    cache.seq_div(2, 16, 3)  # [2, 16) // 3: 16 and 17 stay
    assert cache.positions == [0, 1, 0, 1, 4, 5, 16, 17, 2, 3]
    cache.seq_add(16, -1, -10)  # p1 < 0: no upper end
    assert cache.positions == [0, 1, 0, 1, 4, 5, 6, 7, 2, 3]
    cache.seq_add(-5, 1, -1)  # p0 < 0 means 0; position 0 - 1 < 0: the cell is freed
    assert cache.positions == [None, 1, None, 1, 4, 5, 6, 7, 2, 3]
    assert cache.pos_max() == 7 and KVCache().pos_max() == -1


# ----------------------------------------------------------------------------------------------
# (a) Hand traces, N = 12, g = 2


def _check_trace(replay, queries, keys):
    """Every token's query position and the positions of the keys it attends (tokens 0 .. t, in order)."""
    assert replay.n_tokens == len(queries)
    for t, (query, row) in enumerate(zip(queries, keys)):
        assert replay.query_position(t) == query, t
        assert replay.attended(t) == list(enumerate(row)), t


# examples/main, w = 4, one token per call: block 0 (tokens 0-3) is divided when token 4 comes,
# block 1 (tokens 4-7) when token 8 comes; the current block keeps exact positions after them.
MAIN_TOKEN_BY_TOKEN_QUERIES = [0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7]
MAIN_TOKEN_BY_TOKEN_KEYS = [
    [0], [0, 1], [0, 1, 2], [0, 1, 2, 3],
    [0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 3], [0, 0, 1, 1, 2, 3, 4], [0, 0, 1, 1, 2, 3, 4, 5],
    [0, 0, 1, 1, 2, 2, 3, 3, 4], [0, 0, 1, 1, 2, 2, 3, 3, 4, 5],
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6], [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7],
]


def test_hand_trace_main_token_by_token():
    _check_trace(replay_main(12, 2, 4, batch_size=1), MAIN_TOKEN_BY_TOKEN_QUERIES, MAIN_TOKEN_BY_TOKEN_KEYS)
    # no prompt at all (every token generated) is the same schedule
    _check_trace(replay_main(12, 2, 4, prompt_length=0), MAIN_TOKEN_BY_TOKEN_QUERIES, MAIN_TOKEN_BY_TOKEN_KEYS)


def test_hand_trace_main_prompt_in_batches_of_8():
    """Tokens 0-7 in one call: nothing is compressed yet, so tokens 4-7 see block 0 at exact positions."""
    queries = [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]
    keys = [list(range(t + 1)) for t in range(8)] + [[0, 0, 1, 1, 2, 2, 3, 3] + list(range(4, q + 1))
                                                       for q in (4, 5, 6, 7)]
    _check_trace(replay_main(12, 2, 4, batch_size=8), queries, keys)


def test_hand_trace_main_batch_straddling_a_block():
    """Batches of 3 with w = 4: the batch [3, 6) starts before block 0 is complete, so tokens 4 and 5
    still see it exact; the batch [6, 9) then sees it divided (C = 4), and so does [9, 12)."""
    replay = replay_main(12, 2, 4, batch_size=3)
    queries = [0, 1, 2, 3, 4, 5, 4, 5, 6, 5, 6, 7]  # token 9's call starts at 9: block [4, 8) divided too (C = 8)
    keys = [list(range(t + 1)) for t in range(6)]
    keys += [[0, 0, 1, 1] + list(range(2, q + 1)) for q in (4, 5, 6)]
    keys += [[0, 0, 1, 1, 2, 2, 3, 3] + list(range(4, q + 1)) for q in (5, 6, 7)]
    _check_trace(replay, queries, keys)
    assert replay_main(12, 2, 4, batch_size=1).query_position(5) == 3
    _assert_map_equals_replay(LlamaCppSelfExtend(2, 4, batch_size=3), replay)


def test_hand_trace_passkey_batches_of_4():
    """passkey, batch 4: before batch 1 the positions of batch 0 are divided, before batch 2 those of batch 1."""
    _check_trace(replay_passkey(12, 2, 4), MAIN_TOKEN_BY_TOKEN_QUERIES, MAIN_TOKEN_BY_TOKEN_KEYS)


def test_hand_trace_passkey_answer_tokens_are_never_compressed():
    """Prompt of 6 tokens (batches [0, 4) and [4, 6)), then 6 answer tokens at the next positions."""
    queries = [0, 1, 2, 3, 2, 3, 4, 5, 6, 7, 8, 9]
    keys = [list(range(t + 1)) for t in range(4)] + [[0, 0, 1, 1] + list(range(2, q + 1)) for q in queries[4:]]
    _check_trace(replay_passkey(12, 2, 4, prompt_length=6), queries, keys)


def test_main_positions_are_the_ones_llama_decode_assigns():
    """A batch without positions starts at the largest cached position + 1: the example's n_past agrees."""
    for replay in (replay_main(40, 2, 8, batch_size=4), replay_main(40, 4, 8, batch_size=16, prompt_length=16),
                   replay_main(40, 3, 6, batch_size=1)):
        for call in replay.calls:
            before = [p for p in call.keys[:call.first] if p is not None]
            assert call.queries[0] == max(before, default=-1) + 1


# ----------------------------------------------------------------------------------------------
# (b) The maps equal the replay, pair by pair


def _assert_map_equals_replay(method, replay):
    values, attended, grouped = replay.relative_positions()
    map_values, regions, map_attended = position_map(method, replay.n_tokens)
    assert torch.equal(map_attended, attended)  # llama.cpp's mask by position is the causal mask here
    assert torch.equal(map_values[attended], values[attended].double())
    if method.group_size > 1:  # (g = 1 divides nothing: llama.cpp skips the call, both regions are exact)
        assert torch.equal(regions[attended] == 1, grouped[attended])  # region 1 = the divided keys
    assert method.largest_relative_position(replay.n_tokens) == float(values[attended].max())


@pytest.mark.parametrize("g, w", [(1, 4), (2, 4), (2, 6), (3, 6), (4, 8), (4, 4)])
def test_main_map_equals_replay(g, w):
    """Every batch size, batches that cross a block boundary included, prompt then generation."""
    for b in (1, 2, 3, 5, w // 2, w, w + 1, 2 * w, 3 * w):
        for n in (1, 5, w + 1, 2 * w - 1, 3 * w + 2, 29):
            for prompt in (None, 0, 1, 3, w, w + 1, 2 * w + 3, n):
                if prompt is not None and prompt > n:
                    continue
                method = LlamaCppSelfExtend(g, w, batch_size=b, prompt_length=prompt)
                _assert_map_equals_replay(method, replay_main(n, g, w, batch_size=b, prompt_length=prompt))


@pytest.mark.parametrize("g, b", [(1, 3), (2, 4), (2, 6), (3, 6), (4, 8), (8, 8)])
def test_passkey_map_equals_replay(g, b):
    for n in (1, 5, b + 1, 2 * b - 1, 3 * b + 2, 29):
        for prompt in (None, 1, b, b + 1, n):
            if prompt is not None and prompt > n:
                continue
            _assert_map_equals_replay(LlamaCppPasskey(g, b, prompt_length=prompt),
                                      replay_passkey(n, g, b, prompt_length=prompt))


def test_batch_dividing_the_window_is_token_by_token_decoding():
    one = position_map(LlamaCppSelfExtend(2, 8, batch_size=1), 40)[0]
    for b in (2, 4, 8):
        assert torch.equal(position_map(LlamaCppSelfExtend(2, 8, batch_size=b), 40)[0], one)


# ----------------------------------------------------------------------------------------------
# (c) Where llama.cpp equals Algorithm 1, and the issue's numbers


@pytest.mark.parametrize("g, w", [(2, 4), (3, 6), (4, 8)])
def test_equals_algorithm1_for_the_last_token_of_each_block_only(g, w):
    n = 5 * w + 3
    paper = merged_relative_positions(n, n, g, w)
    for replay in (replay_main(n, g, w, batch_size=1), replay_passkey(n, g, w)):  # block = w in both
        values, _, _ = replay.relative_positions()
        for t in range(n):
            same = torch.equal(values[t, :t + 1], paper[t, :t + 1])
            if t % w == w - 1 or t < w:  # before the first block is complete both are exact
                assert same, t
            else:
                assert not same, t
    assert torch.equal(position_map(SelfExtend(g, w), n)[0][w - 1::w], paper[w - 1::w].double())


def _last_token(replay):
    """(query position, keys never divided) of the last token, read off the replay's arrays.

    A key never divided keeps its exact distance. (Grouped key 14,335 of the issue's run happens to
    land on its exact distance too: 3,839 - 14,335 // 8 = 16,383 - 14,335; it is not counted.)
    """
    t = replay.n_tokens - 1
    query = replay.query_position(t)
    grouped = set(replay.grouped(t))
    exact = [(j, p) for j, p in replay.attended(t) if j not in grouped]
    assert all(query - p == t - j for j, p in exact)
    return query, len(exact)


def test_the_issue_numbers_16384_tokens_g8_batch_2048():
    n, g = 16_384, 8
    replay = replay_passkey(n, g, 2048)
    assert _last_token(replay) == (3_839, 2_048)  # 7 * 2048 / 8 + 2047
    keys = replay.calls[-1].keys
    assert all(keys[j] == j // g for j in range(7 * 2048))  # earlier batches: j // g, as in the paper
    # Algorithm 1 with w = 1,024: the query at 16383 // 8 + 1024 - 128, and w exact keys
    assert largest_relative_position(n, g, 1024) == 16_383 // 8 + 1024 - 1024 // 8 == 2_943
    assert SelfExtend(g, 1024).largest_relative_position(n) == 2_943.0
    assert sum(1 for j in range(n) if (n - 1) - j < 1024) == 1_024
    # the maps' closed form, with no n x n tensor
    assert LlamaCppPasskey(g).largest_relative_position(n) == 3_839.0
    # examples/main with --grp-attn-w 1024 and the default -b 2048: the prompt's batches decide
    assert _last_token(replay_main(n, g, 1024)) == (3_839, 2_048)
    assert LlamaCppSelfExtend(g, 1024).largest_relative_position(n) == 3_839.0
    # ... while batches of 1,024 (= token by token) end a block at the last token: Algorithm 1's numbers
    assert _last_token(replay_main(n, g, 1024, batch_size=1024)) == (2_943, 1_024)
    assert LlamaCppSelfExtend(g, 1024, batch_size=1).largest_relative_position(n) == 2_943.0


# ----------------------------------------------------------------------------------------------
# (d) The kernel runs the maps


def _replay_attention_loop(replay, q, k, v, base=10000.0):
    """float64, one query at a time: q rotated to its replayed position, each attended key to its own."""
    b, hq, n, dim = q.shape
    hkv = k.shape[1]
    out = torch.zeros(b, hq, n, v.shape[-1], dtype=torch.float64)
    for batch in range(b):
        for head in range(hq):
            kv = head // (hq // hkv)
            for t in range(n):
                qr = rotate_pairs(q[batch, head, t], replay.query_position(t), base)
                keys = replay.attended(t)
                logits = [float(qr @ rotate_pairs(k[batch, kv, j], p, base)) / math.sqrt(dim) for j, p in keys]
                top = max(logits)
                weights = [math.exp(x - top) for x in logits]
                for (j, _), e in zip(keys, weights):
                    out[batch, head, t] += e / sum(weights) * v[batch, kv, j].double()
    return out


ATTENTION_CASES = {
    "main_token_by_token": (LlamaCppSelfExtend(2, 4, batch_size=1), lambda n: replay_main(n, 2, 4, batch_size=1)),
    "main_prompt_then_decode": (LlamaCppSelfExtend(2, 4, batch_size=8, prompt_length=8),
                                lambda n: replay_main(n, 2, 4, batch_size=8, prompt_length=8)),
    "main_batches_across_blocks": (LlamaCppSelfExtend(2, 4, batch_size=3, prompt_length=9),
                                   lambda n: replay_main(n, 2, 4, batch_size=3, prompt_length=9)),
    "passkey_with_answer": (LlamaCppPasskey(2, 4, prompt_length=6),
                            lambda n: replay_passkey(n, 2, 4, prompt_length=6)),
}


@pytest.mark.parametrize("name", ATTENTION_CASES)
def test_attention_equals_a_loop_over_the_replayed_positions(name, implementation):
    method, replay_of = ATTENTION_CASES[name]
    n = 13
    q, k, v = torch.randn(1, 2, n, 8), torch.randn(1, 1, n, 8), torch.randn(1, 1, n, 8)
    expected = _replay_attention_loop(replay_of(n), q, k, v)
    out = attention(method, q, k, v, implementation=implementation)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)
    last = attention(method, q[:, :, -3:], k, v, implementation=implementation)  # decoding rows
    torch.testing.assert_close(last.double(), expected[:, :, -3:], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------------------
# (e) Bad parameters


@pytest.mark.parametrize("build, match", [
    (lambda: LlamaCppSelfExtend(0, 4), "group_size must be a positive integer"),
    (lambda: LlamaCppSelfExtend(2, 0), "window must be a positive integer"),
    (lambda: LlamaCppSelfExtend(3, 4), r"window must be a multiple of group_size \(3\)"),
    (lambda: LlamaCppSelfExtend(2, 4, batch_size=0), "batch_size must be a positive integer"),
    (lambda: LlamaCppSelfExtend(2, 4, batch_size=8, prompt_length=-1), "prompt_length must be a non-negative"),
    (lambda: LlamaCppSelfExtend(2, 4).largest_relative_position(0), "seq_len must be a positive integer"),
    (lambda: LlamaCppPasskey(3), r"batch_size must be a multiple of group_size \(3\)"),
    (lambda: LlamaCppPasskey(2, 0), "batch_size must be a positive integer"),
    (lambda: LlamaCppPasskey(2, 4, prompt_length=0), "prompt_length must be a positive integer"),
    (lambda: LlamaCppPasskey(2).largest_relative_position(0), "seq_len must be a positive integer"),
    (lambda: replay_main(0, 2, 4), "n_tokens must be a positive integer"),
    (lambda: replay_main(12, 3, 4), r"window must be a multiple of group_size \(3\)"),
    (lambda: replay_main(12, 2, 4, prompt_length=13), r"prompt_length must be in \[0, n_tokens\] = \[0, 12\]"),
    (lambda: replay_passkey(12, 2, 3), r"batch_size must be a multiple of group_size \(2\)"),
    (lambda: replay_passkey(12, 2, 4, prompt_length=0), r"prompt_length must be in \[1, n_tokens\]"),
    (lambda: replay_passkey(12, 0), "group_size must be a positive integer"),
    (lambda: KVCache().seq_div(0, 4, 0), "d must be a positive integer"),
    (lambda: replay_passkey(4, 2, 4).query_position(4), r"token must be in \[0, 3\]"),
])
def test_bad_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()
