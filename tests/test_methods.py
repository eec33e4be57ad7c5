"""SelfExtend's relatives: hand-typed position maps, attention against a per-query loop, bad parameters."""
import pytest
import torch

from figure3 import FIGURE3_SELFEXTEND
from naive import relative_attention_loop
from selfextend.attention import self_extend_attention
from selfextend.methods import (SELF, STRING, DualChunk, LeakyReRoPE, LMInfinite, ReRoPE, SelfExtend,
                                SelfExtendFloat, SlidingWindow, StreamingLLM, attention, position_map, recommended)

N_ = None  # a key the method drops

# (method, the naive rule's name and parameters, causal rows typed by hand from the rule)
CASES = {
    "selfextend": (SelfExtend(2, 4), "selfextend", {"g": 2, "w": 4}, FIGURE3_SELFEXTEND),
    "rerope": (ReRoPE(3), "rerope", {"w": 3}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [3, 3, 2, 1, 0], [3, 3, 3, 2, 1, 0]]),
    "leaky_rerope": (LeakyReRoPE(2, 2.0), "leaky_rerope", {"w": 2, "k": 2.0}, [
        [0], [1, 0], [2, 1, 0], [2.5, 2, 1, 0], [3, 2.5, 2, 1, 0], [3.5, 3, 2.5, 2, 1, 0]]),
    # group sizes 1, 1, 2, 3, 3, ... (C = 4, r = 1): G = 0, 1, 2, 2, 3, 3, 3, 4, 4, 4
    "self": (SELF(4.0, 1.0, 2), "self", {"C": 4.0, "r": 1.0, "w": 2}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [4, 3, 2, 1, 0], [4, 3, 2, 2, 1, 0],
        [5, 4, 3, 3, 2, 1, 0], [5, 4, 3, 3, 2, 2, 1, 0], [5, 4, 3, 3, 2, 2, 2, 1, 0],
        [6, 5, 4, 4, 3, 3, 3, 2, 1, 0]]),
    "string": (STRING(3, 1), "string", {"S": 3, "W": 1}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [2, 3, 2, 1, 0], [3, 2, 3, 2, 1, 0], [4, 3, 2, 3, 2, 1, 0]]),
    # chunks of 4, local window 2, ceiling 5: intra d, successive min(4 + i % 4, 5) - j % 4, inter 5 - j % 4
    "dca": (DualChunk(4, 2, 6), "dca", {"s": 4, "w": 2}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0],
        [4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 2, 1, 0], [5, 4, 3, 2, 3, 2, 1, 0],
        [5, 4, 3, 2, 4, 3, 2, 1, 0], [5, 4, 3, 2, 5, 4, 3, 2, 1, 0],
        [5, 4, 3, 2, 5, 4, 3, 2, 2, 1, 0], [5, 4, 3, 2, 5, 4, 3, 2, 3, 2, 1, 0]]),
    "lm_infinite": (LMInfinite(4, 3, 1), "lm_infinite", {"L": 4, "n_local": 3, "n_global": 1}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [4, N_, 2, 1, 0], [4, N_, N_, 2, 1, 0], [4, N_, N_, N_, 2, 1, 0]]),
    "streaming": (StreamingLLM(1, 3), "streaming", {"S": 1, "R": 3}, [
        [0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [3, N_, 2, 1, 0], [3, N_, N_, 2, 1, 0], [3, N_, N_, N_, 2, 1, 0]]),
    "sliding_window": (SlidingWindow(3), "sliding_window", {"W": 3}, [
        [0], [1, 0], [2, 1, 0], [N_, 2, 1, 0], [N_, N_, 2, 1, 0], [N_, N_, N_, 2, 1, 0]]),
}


@pytest.mark.parametrize("name", CASES)
def test_position_map_typed_by_hand(name):
    method, _, _, rows = CASES[name]
    values, _, attended = position_map(method, len(rows))
    for i, row in enumerate(rows):
        assert len(row) == i + 1
        for j, expected in enumerate(row):
            assert bool(attended[i, j]) == (expected is not None), (i, j)
            if expected is not None:
                assert float(values[i, j]) == pytest.approx(expected, abs=1e-12), (i, j)
        assert not attended[i, i + 1:].any()


def test_float_shift_example_of_the_issue():
    """N = 12, g = 3, w = 4: the official float shift gives 5.667 where Algorithm 1 gives 6."""
    values, _, _ = position_map(SelfExtendFloat(3, 4), 12)
    expected = [17 / 3] * 3 + [14 / 3] * 3 + [11 / 3] * 2 + [3, 2, 1, 0]
    assert values[-1].tolist() == pytest.approx(expected, abs=1e-12)
    assert values[7, :8].tolist() == pytest.approx([14 / 3] * 3 + [11 / 3, 3, 2, 1, 0], abs=1e-12)
    exact, _, _ = position_map(SelfExtend(3, 4), 12)
    assert exact[-1].tolist() == [6, 6, 6, 5, 5, 5, 4, 4, 3, 2, 1, 0]


ATTENTION_CASES = {**{k: v[:3] for k, v in CASES.items()},
                   "selfextend_float": (SelfExtendFloat(3, 4), "selfextend_float", {"g": 3, "w": 4}),
                   "dca_three_chunks": (DualChunk(8, 3, 12), "dca", {"s": 8, "w": 3}),
                   "streaming_no_sink": (StreamingLLM(0, 5), "streaming", {"S": 0, "R": 5})}


@pytest.mark.parametrize("name", ATTENTION_CASES)
def test_attention_equals_per_query_loop(name, implementation):
    method, rule, params = ATTENTION_CASES[name]
    n = 33
    q, k, v = torch.randn(2, 4, n, 8), torch.randn(2, 2, n, 8), torch.randn(2, 2, n, 8)
    expected = relative_attention_loop(q, k, v, rule, params)
    out = attention(method, q, k, v, implementation=implementation)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", recommended(128), ids=lambda m: m.label)
def test_fast_path_equals_reference_for_the_recommended_settings(method):
    q, k, v = torch.randn(1, 2, 600, 16), torch.randn(1, 2, 600, 16), torch.randn(1, 2, 600, 16)
    fast = attention(method, q, k, v, implementation="fast")
    torch.testing.assert_close(fast, attention(method, q, k, v, implementation="reference"), atol=1e-5, rtol=0)
    last = attention(method, q[:, :, -1:], k, v, implementation="fast")  # decoding: the last row
    torch.testing.assert_close(last, fast[:, :, -1:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("implementation", ["reference", "fast"])
@pytest.mark.parametrize("shape", [(2, 4, 2, 300, 300), (1, 2, 2, 1, 700), (1, 2, 1, 50, 600)])
def test_selfextend_through_the_generic_path_is_bit_for_bit(implementation, shape):
    b, hq, hkv, nq, nk = shape
    q, k, v = torch.randn(b, hq, nq, 32), torch.randn(b, hkv, nk, 32), torch.randn(b, hkv, nk, 32)
    for g, w in ((4, 32), (3, 10)):
        generic = attention(SelfExtend(g, w), q, k, v, implementation=implementation)
        assert torch.equal(generic, self_extend_attention(q, k, v, g, w, implementation=implementation))
    positions = torch.arange(nk) + 7
    generic = attention(SelfExtend(4, 20), q, k, v, positions=positions, implementation=implementation)
    assert torch.equal(generic, self_extend_attention(q, k, v, 4, 20, positions=positions,
                                                      implementation=implementation))


def test_weights_are_a_softmax_over_the_kept_keys():
    q = k = v = torch.randn(1, 1, 12, 8)
    out, weights = attention(StreamingLLM(1, 3), q, k, v, return_weights=True)
    _, _, attended = position_map(StreamingLLM(1, 3), 12)
    assert torch.all(weights[0, 0][~attended] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 1, 12, dtype=weights.dtype))


# ----------------------------------------------------------------------------------------------
# The identities the maps show


@pytest.mark.parametrize("g, w", [(2, 4), (3, 4), (4, 6), (16, 32)])
def test_leaky_rerope_with_a_floor_is_selfextend(g, w):
    assert torch.equal(position_map(LeakyReRoPE(w, g, floor=True), 64)[0], position_map(SelfExtend(g, w), 64)[0])


@pytest.mark.parametrize("w", [1, 3, 8])
def test_rerope_is_selfextend_with_a_group_larger_than_the_input(w):
    n = 40
    assert torch.equal(position_map(ReRoPE(w), n)[0], position_map(SelfExtend(n, w), n)[0])
    assert not torch.equal(position_map(ReRoPE(w), n)[0], position_map(SelfExtend(n // 4, w), n)[0])


def test_float_shift_equals_algorithm1_when_g_divides_w():
    assert torch.equal(position_map(SelfExtendFloat(4, 8), 50)[0], position_map(SelfExtend(4, 8), 50)[0])


def test_lm_infinite_is_rerope_at_the_pretrained_length_on_its_kept_keys():
    values, _, attended = position_map(LMInfinite(16, 16, 3), 60)
    rerope = position_map(ReRoPE(16), 60)[0]
    assert torch.equal(values[attended], rerope[attended])


@pytest.mark.parametrize("method", recommended(128) + [c[0] for c in CASES.values()], ids=lambda m: m.label)
def test_largest_relative_position_closed_form(method):
    for n in (1, 2, 5, 17, 40, 130, 300):
        values, _, attended = position_map(method, n)
        assert method.largest_relative_position(n) == pytest.approx(float(values[attended].max()), abs=1e-9), n


# ----------------------------------------------------------------------------------------------
# Bad parameters


@pytest.mark.parametrize("build, match", [
    (lambda: SelfExtend(0, 4), "group_size"),
    (lambda: SelfExtend(2, 4, pretrained_length=4), r"window must be in \[1, pretrained_length - 1\]"),
    (lambda: SelfExtendFloat(2, 0), "window"),
    (lambda: ReRoPE(0), "window"),
    (lambda: ReRoPE(200, pretrained_length=128), r"window must be in \[1, pretrained_length - 1\] = \[1, 127\]"),
    (lambda: LeakyReRoPE(16, 1.0), r"leak must be a number > 1"),
    (lambda: LeakyReRoPE(16, 0.5), r"leak must be a number > 1"),
    (lambda: LeakyReRoPE(16, 2.5, floor=True), "leak must be an integer"),
    (lambda: LeakyReRoPE(128, 16.0, 128), "window"),
    (lambda: SELF(1.0, 0.02, 16), "capacity must be a number > 1"),
    (lambda: SELF(16.0, 0.0, 16), "rate must be a number > 0"),
    (lambda: SELF(16.0, 0.1, 130, 128), "window"),
    (lambda: STRING(40, 40), r"local_window must be in \[1, offset - 1\]"),
    (lambda: STRING(130, 4, 128), r"offset must be in \[1, pretrained_length - 1\]"),
    (lambda: STRING(0, 4), "offset"),
    (lambda: DualChunk(32, 32, 128), r"chunk_size must be > local_window"),
    (lambda: DualChunk(16, 32, 128), r"chunk_size must be > local_window"),
    (lambda: DualChunk(96, 40, 128), r"local_window must be in \[1, pretrained_length - chunk_size\]"),
    (lambda: DualChunk(96, 0, 128), "local_window"),
    (lambda: LMInfinite(128, 200), r"n_local must be in \[1, pretrained_length\]"),
    (lambda: LMInfinite(128, 64, -1), "n_global"),
    (lambda: LMInfinite(0), "pretrained_length"),
    (lambda: StreamingLLM(4, 200, 128), r"n_recent must be in \[1, pretrained_length - n_sink\]"),
    (lambda: StreamingLLM(-1, 20), "n_sink"),
    (lambda: StreamingLLM(4, 0), "n_recent"),
    (lambda: SlidingWindow(0), "window must be a positive integer"),
    (lambda: recommended(8), "pretrained_length"),
])
def test_bad_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_attention_checks_its_inputs():
    with pytest.raises(ValueError, match="implementation"):
        attention(ReRoPE(4), *(torch.randn(1, 1, 8, 8),) * 3, implementation="quick")
    with pytest.raises(ValueError, match="head_dim"):
        attention(ReRoPE(4), *(torch.randn(1, 1, 8, 7),) * 3)
