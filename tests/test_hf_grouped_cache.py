"""Decoding keeps each layer's grouped keys on the transformers DynamicCache and turns only the new rows;
the result must be exactly what turning every cached key again gives, and any change to the cache
(crop, another handle, a fresh cache) must start over, never reuse stale rows."""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import selfextend.hf.integration as integration  # noqa: E402
from selfextend.hf import SelfExtend  # noqa: E402
from test_hf_nxn import long_llama  # noqa: E402

G, W = 4, 32


def saved(cache, layer: int = 0):
    return getattr(cache.layers[layer], integration._GROUPED_ATTR, None)


def step_by_step(model, ids, steps: int):
    """Greedy decoding with a DynamicCache: (tokens, last logits, cache)."""
    cache = transformers.DynamicCache(config=model.config)
    out = model(input_ids=ids, cache=cache, use_cache=True)
    generated = []
    for _ in range(steps):
        token = out.logits[:, -1:].argmax(-1)
        generated.append(token)
        out = model(input_ids=token, cache=cache, use_cache=True)
    return torch.cat(generated, 1), out.logits[:, -1], cache


def without_cache(model, ids, generated):
    """The same sequence in one uncached forward: the logits after the last generated token."""
    return model(input_ids=torch.cat([ids, generated], 1), use_cache=False).logits[:, -1]


@torch.no_grad()
def test_decoding_with_kept_grouped_keys_equals_recomputing_them():
    model = long_llama()
    ids = torch.randint(3, 97, (2, 300), generator=torch.Generator().manual_seed(0))
    with SelfExtend(model, G, W) as handle:
        generated, last, cache = step_by_step(model, ids, 12)
        kept = saved(cache)
        assert kept is not None and kept.owner == handle.name and kept.length == 300 + 12
        assert kept.buffer.shape[2] <= kept.length + max(kept.length // 16, 256)  # grows by a sixteenth
        assert kept.buffer.shape[2] == 300 + 256  # the prefill's buffer already had room for the 12 steps
        # what the attention used: every cached key turned to its grouped position from scratch
        inv_freq = model.model.rotary_emb.inv_freq
        fresh = integration.rotate_by(cache.layers[0].keys, (torch.arange(312) // G - torch.arange(312))[None],
                                      inv_freq)
        assert torch.equal(kept.buffer[:, :, :312], fresh)
        assert torch.allclose(last, without_cache(model, ids, generated), atol=1e-5)


@torch.no_grad()
def test_a_cropped_or_foreign_cache_starts_over():
    model = long_llama()
    ids = torch.randint(3, 97, (1, 200), generator=torch.Generator().manual_seed(1))
    with SelfExtend(model, G, W):
        _, _, cache = step_by_step(model, ids, 3)
        cache.crop(150 - cache.get_seq_length())  # keep 150 positions: the kept rows 150.. no longer match
        other = torch.randint(3, 97, (1, 5), generator=torch.Generator().manual_seed(2))
        after_crop = model(input_ids=other, cache=cache, use_cache=True).logits[:, -1]
        assert saved(cache).length == 155
    expected_ids = torch.cat([ids[:, :150], other], 1)
    with SelfExtend(model, G, W):
        assert torch.allclose(after_crop, model(input_ids=expected_ids, use_cache=False).logits[:, -1], atol=1e-5)
    # a cache filled under one handle, continued under another with a different group size
    with SelfExtend(model, G, W):
        _, _, cache = step_by_step(model, ids, 2)
    with SelfExtend(model, 2 * G, W) as second:  # the cached keys stay; their grouped rows must be redone
        model(input_ids=torch.tensor([[5]]), cache=cache, use_cache=True)
        n = cache.get_seq_length()
        shift = (torch.arange(n) // (2 * G) - torch.arange(n))[None]
        for layer in range(len(cache.layers)):
            assert saved(cache, layer).owner == second.name and saved(cache, layer).length == n
            fresh = integration.rotate_by(cache.layers[layer].keys, shift, model.model.rotary_emb.inv_freq)
            assert torch.equal(saved(cache, layer).buffer[:, :, :n], fresh)
