"""``selfextend.hf.SlidingWindow`` on a tiny random Llama against an independent computation.

The reference: the same weights with transformers' eager attention and an explicit 4-D additive
mask [1, 1, N, N] (0 where 0 <= i - j < W, the float minimum elsewhere), which transformers applies
as given. Greedy decoding by hand re-runs the whole prefix through it at every step.
"""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfextend.hf import SelfExtend, SlidingWindow  # noqa: E402
from selfextend.hf.real_results import tiny_config  # noqa: E402

VOCAB = 97
N = 200


@pytest.fixture(scope="module")
def models():
    """(model with sdpa attention, the same weights with eager attention), seeded, eval mode."""
    torch.manual_seed(0)
    config = tiny_config(VOCAB)
    model = transformers.LlamaForCausalLM._from_config(config, attn_implementation="sdpa").eval()
    eager = transformers.LlamaForCausalLM._from_config(config, attn_implementation="eager").eval()
    eager.load_state_dict(model.state_dict())
    return model, eager


def tokens(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, VOCAB, (1, n), generator=torch.Generator().manual_seed(seed))


def window_mask(n: int, window: int) -> torch.Tensor:
    """[1, 1, n, n] additive mask: 0 where 0 <= i - j < window, the float32 minimum elsewhere."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    allowed = (i - j >= 0) & (i - j < window)
    return torch.zeros(n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)[None, None]


@torch.no_grad()
def reference_logits(eager, ids: torch.Tensor, window: int) -> torch.Tensor:
    return eager(ids, attention_mask=window_mask(ids.shape[1], window)).logits


@pytest.mark.parametrize("window", [1, 16, 64, 300])
@torch.no_grad()
def test_prefill_equals_eager_with_an_explicit_window_mask(models, window):
    model, eager = models
    ids = tokens(N)
    with SlidingWindow(model, window) as handle:
        got = model(ids, attention_mask=torch.ones_like(ids)).logits
        assert handle.calls == 2  # both layers ran through it
    expected = reference_logits(eager, ids, window)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    if window < N:  # the reference's mask really bites (transformers applied it as given)
        assert not torch.allclose(expected, eager(ids).logits, atol=1e-3)


@torch.no_grad()
def test_window_longer_than_the_input_is_the_plain_model(models):
    model, _ = models
    ids = tokens(N)
    plain = model(ids).logits
    with SlidingWindow(model, N):
        torch.testing.assert_close(model(ids).logits, plain, atol=1e-5, rtol=1e-5)
    with SlidingWindow(model, 16):  # and a short window really differs
        assert not torch.allclose(model(ids).logits, plain, atol=1e-3)


@pytest.mark.parametrize("window", [16, 64])
@torch.no_grad()
def test_prefill_with_a_cache(models, window):
    """A prompt of 150, then 50 more tokens against the cache (nq < nk), then one decoding step."""
    model, eager = models
    ids = tokens(N + 1)
    expected = reference_logits(eager, ids, window)
    with SlidingWindow(model, window):
        cache = transformers.DynamicCache(config=model.config)
        first = model(ids[:, :150], cache=cache, use_cache=True).logits
        second = model(ids[:, 150:N], cache=cache, use_cache=True).logits
        third = model(ids[:, N:], cache=cache, use_cache=True).logits
    torch.testing.assert_close(torch.cat((first, second, third), dim=1), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_static_cache_drops_its_empty_slots(models):
    """A static cache of 256 slots holds 60 tokens: the empty slots are not keys."""
    model, eager = models
    ids = tokens(61, seed=3)
    expected = reference_logits(eager, ids, 16)
    with SlidingWindow(model, 16):
        cache = transformers.StaticCache(config=model.config, max_cache_len=256)
        first = model(ids[:, :60], cache=cache, use_cache=True).logits
        step = model(ids[:, 60:], cache=cache, use_cache=True).logits
    torch.testing.assert_close(torch.cat((first, step), dim=1), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window", [1, 16])
@torch.no_grad()
def test_greedy_generate_equals_decoding_by_hand(models, window):
    model, eager = models
    prompt = tokens(40, seed=2)
    with SlidingWindow(model, window):
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=10, min_new_tokens=10,
                             do_sample=False, pad_token_id=0)
    ids = prompt
    for _ in range(10):  # the whole prefix again at every step, through the explicit mask
        next_token = reference_logits(eager, ids, window)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat((ids, next_token), dim=1)
    assert out.shape == (1, 50)
    assert torch.equal(out, ids)


@torch.no_grad()
def test_remove_restores_bit_identical_outputs(models):
    model, _ = models
    ids = tokens(N)
    before = model(ids).logits
    handle = SlidingWindow(model, 16)
    assert "SlidingWindow(window=16, active" in repr(handle)
    assert not torch.equal(model(ids).logits, before)
    handle.remove()
    handle.remove()  # idempotent
    assert torch.equal(model(ids).logits, before)
    assert "removed" in repr(handle)
    with SelfExtend(model, 2, 8):  # the shared machinery: one handle at a time, either kind
        with pytest.raises(ValueError, match="SelfExtend is already applied"):
            SlidingWindow(model, 16)
    with SlidingWindow(model, 16):
        with pytest.raises(ValueError, match="SlidingWindow is already applied"):
            SelfExtend(model, 2, 8)
    assert torch.equal(model(ids).logits, before)


@pytest.mark.parametrize("window", [0, -1, 2.0, None])
def test_bad_window_raises(models, window):
    with pytest.raises(ValueError, match="window must be a positive integer"):
        SlidingWindow(models[0], window)
    assert not hasattr(models[0], "_selfextend_handle")


@torch.no_grad()
def test_padding_is_refused(models):
    model, _ = models
    ids = tokens(20)
    mask = torch.ones_like(ids)
    mask[:, :3] = 0  # left padding
    with SlidingWindow(model, 8):
        with pytest.raises(ValueError, match="padding is not supported by SlidingWindow"):
            model(ids, attention_mask=mask)
