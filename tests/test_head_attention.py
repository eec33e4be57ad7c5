"""selfextend.hf.head_attention: the pooled attention map of a real layer, against the model's own eager
attention weights (plain) and against a per-query loop over the paper's rule (SelfExtend)."""
from __future__ import annotations

import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfextend.hf.head_attention import capture_attention_input, layer_queries_keys, pooled_attention  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    """A seeded random Llama (2 layers, 4 query / 2 KV heads, head_dim 8), eager attention."""
    config = transformers.LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      rope_theta=10000.0, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def captured(model, n):
    ids = torch.randint(0, 97, (1, n), generator=torch.Generator().manual_seed(1))
    layer = model.model.layers[1].self_attn
    with capture_attention_input(layer, n) as capture, torch.no_grad():
        out = model(ids, output_attentions=True)
    q, k = layer_queries_keys(layer, capture.hidden)
    return out.attentions[1][0].double(), q, k, layer


def rotate(x, p, inv_freq):
    """Rotate-half RoPE of one vector x [d] to position p, written out."""
    half = x.shape[-1] // 2
    angles = p * inv_freq.double()
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[:half].double(), x[half:].double()
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin))


def test_plain_map_is_the_models_own_attention(tiny):
    weights, q, k, layer = captured(tiny, 48)  # weights [4, 48, 48] from the eager forward
    pooled, last_row = pooled_attention(q, k, tiny.model.rotary_emb.inv_freq, layer.scaling, block=1, row_block=1)
    assert torch.allclose(pooled, weights, atol=1e-6)
    assert torch.allclose(last_row, weights[:, -1], atol=1e-6)
    pooled4, _ = pooled_attention(q, k, tiny.model.rotary_emb.inv_freq, layer.scaling, block=4, row_block=1)
    expected = weights.view(4, 12, 4, 12, 4).sum(-1).mean(2)  # mean over 4 queries of the mass on 4 keys
    assert torch.allclose(pooled4, expected, atol=1e-6)
    assert torch.allclose(pooled4.sum(-1), torch.ones(4, 12, dtype=torch.float64), atol=1e-6)


def test_selfextend_map_follows_the_rule(tiny):
    n, g, w = 40, 3, 5
    _, q, k, layer = captured(tiny, n)
    inv_freq = tiny.model.rotary_emb.inv_freq
    pooled, _ = pooled_attention(q, k, inv_freq, layer.scaling, group_size=g, window=w, block=1, row_block=1)
    for h in (0, 3):
        kv = h // 2  # 4 query heads share 2 KV heads
        for i in (0, 7, 39):
            logits = []
            for j in range(i + 1):
                if i - j < w:
                    qi, kj = rotate(q[h, i], i, inv_freq), rotate(k[kv, j], j, inv_freq)
                else:
                    qi, kj = rotate(q[h, i], i // g + (w - w // g), inv_freq), rotate(k[kv, j], j // g, inv_freq)
                logits.append(float(qi @ kj) / math.sqrt(q.shape[-1]))
            expected = torch.softmax(torch.tensor(logits, dtype=torch.float64), 0)
            assert torch.allclose(pooled[h, i, :i + 1], expected, atol=1e-6), (h, i)
            assert float(pooled[h, i, i + 1:].abs().sum()) == 0.0


def test_length_must_divide_into_blocks(tiny):
    _, q, k, layer = captured(tiny, 10)
    with pytest.raises(ValueError, match="multiple of block"):
        pooled_attention(q, k, tiny.model.rotary_emb.inv_freq, layer.scaling, block=4)
