"""Grouped attention alone (selfextend.methods.Grouped): p // g for every token, against explicit loops."""
import math

import pytest
import torch

from naive import rotate_pairs
from selfextend.attention import self_extend_attention
from selfextend.methods import Grouped, attention, position_map
from selfextend.tiny.model import PLAIN, TinyLM, TinyLMConfig, relative


def grouped_attention_loop(q, k, v, group_size):
    """Grouped attention for q [b, hq, n, d], k/v [b, hkv, n, d], one pair at a time (float64).

    Query i is rotated to i // g, key j to j // g; one softmax over the keys j <= i.
    """
    b, hq, n, d = q.shape
    hkv = k.shape[1]
    out = torch.zeros(b, hq, n, v.shape[-1], dtype=torch.float64)
    for batch in range(b):
        for head in range(hq):
            kv_head = head // (hq // hkv)
            for i in range(n):
                qi = rotate_pairs(q[batch, head, i], i // group_size)
                logits = [float(qi @ rotate_pairs(k[batch, kv_head, j], j // group_size)) / math.sqrt(d)
                          for j in range(i + 1)]
                top = max(logits)
                exps = [math.exp(x - top) for x in logits]
                for j, e in enumerate(exps):
                    out[batch, head, i] += e / sum(exps) * v[batch, kv_head, j].double()
    return out


@pytest.mark.parametrize("g", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("n", [1, 5, 12, 30])
def test_position_map_is_i_over_g_minus_j_over_g(g, n):
    values, _, attended = position_map(Grouped(g), n)
    for i in range(n):
        for j in range(n):
            assert bool(attended[i, j]) == (j <= i), (i, j)
            if j <= i:
                assert float(values[i, j]) == i // g - j // g, (i, j)


def test_figure3_middle_panel():
    """The paper's Figure 3, "Grouped Attention" (// 2), last row for N = 10."""
    values, _, _ = position_map(Grouped(2), 10)
    assert values[-1].tolist() == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]


@pytest.mark.parametrize("g", [1, 2, 3, 8])
def test_largest_relative_position_and_reach(g):
    L = 16
    for n in (1, 2, 5, 17, 40, 130):
        values, _, attended = position_map(Grouped(g), n)
        assert Grouped(g).largest_relative_position(n) == float(values[attended].max()) == (n - 1) // g
    reach = Grouped(g).reach(L)
    assert reach == g * L
    assert Grouped(g).largest_relative_position(reach) < L <= Grouped(g).largest_relative_position(reach + 1)


@pytest.mark.parametrize("g", [1, 2, 3, 5])
def test_attention_equals_the_explicit_loop(g, implementation):
    n = 29
    q, k, v = torch.randn(2, 4, n, 8), torch.randn(2, 2, n, 8), torch.randn(2, 2, n, 8)
    expected = grouped_attention_loop(q, k, v, g)
    out = attention(Grouped(g), q, k, v, implementation=implementation)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_long_input_fast_equals_reference_and_decoding_row(implementation):
    q, k, v = torch.randn(1, 2, 700, 16), torch.randn(1, 2, 700, 16), torch.randn(1, 2, 700, 16)
    full = attention(Grouped(8), q, k, v, implementation=implementation)
    torch.testing.assert_close(full, attention(Grouped(8), q, k, v, implementation="reference"), atol=1e-5, rtol=0)
    last = attention(Grouped(8), q[:, :, -1:], k, v, implementation=implementation)  # one decoding step
    torch.testing.assert_close(last, full[:, :, -1:], atol=1e-5, rtol=0)


def test_group_size_one_is_plain_rope():
    q, k, v = torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8)
    plain = self_extend_attention(q, k, v, 1, 1)  # SelfExtend with g = 1 is plain RoPE
    torch.testing.assert_close(attention(Grouped(1), q, k, v), plain, atol=1e-6, rtol=0)


def test_runs_in_the_tiny_lm():
    model = TinyLM(TinyLMConfig(n_layers=1, d_model=32, n_heads=2, train_length=16)).eval()
    tokens = torch.randint(0, 256, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, relative(Grouped(1))), model(tokens, PLAIN), atol=1e-5, rtol=0)
        grouped = model(tokens, relative(Grouped(4)))
    assert grouped.shape == (2, 40, 256) and torch.isfinite(grouped).all()
    assert not torch.allclose(grouped, model(tokens, PLAIN), atol=1e-4)
    assert relative(Grouped(4)).label == "grouped only (p // 4)"


@pytest.mark.parametrize("bad", [0, -2, 2.5, True])
def test_bad_group_size_raises(bad):
    with pytest.raises(ValueError, match="group_size"):
        Grouped(bad)
