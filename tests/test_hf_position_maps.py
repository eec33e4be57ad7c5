"""``selfextend.hf.MappedPositions`` on tiny random models against an independent per-query computation.

The reference knows nothing of position maps: it replays llama.cpp's KV-cache shifts
(``kv_shift.replay_main`` / ``replay_passkey``) and, for each token, rotates its un-rotated query to
the replayed query position and every key it attends to that key's replayed position (float64, one
query at a time), inside the model's attention (the rotary embedding made the identity). A second
reference runs SelfExtend's own map through the handle against ``selfextend.hf.SelfExtend``.
"""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfextend.hf import MappedPositions, SelfExtend  # noqa: E402
from selfextend.hf.real_results import tiny_config  # noqa: E402
from selfextend.methods import (LlamaCppPasskey, LlamaCppSelfExtend, LMInfinite, ReRoPE, replay_main,  # noqa: E402
                                replay_passkey)
from selfextend.methods import SelfExtend as SelfExtendMap  # noqa: E402

from naive import per_query_logits  # noqa: E402

VOCAB = 97


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM._from_config(tiny_config(VOCAB), attn_implementation="sdpa").eval()


def tokens(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, VOCAB, (1, n), generator=torch.Generator().manual_seed(seed))


def replayed_positions(replay):
    """Query t attends to the keys the replay cached, at their cached positions, from its own replayed position."""
    def attend(t, sliding_window):
        attended = replay.attended(t)  # [(key token, its cached position)]
        k_pos = torch.tensor([p for _, p in attended])
        return torch.tensor([k for k, _ in attended]), torch.full_like(k_pos, replay.query_position(t)), k_pos
    return attend


def replay_logits(model, ids, replay) -> torch.Tensor:
    """Logits with the per-query reference (tests/naive.py) at the replayed positions."""
    return per_query_logits(model, ids, replayed_positions(replay))


N = 90
CASES = {  # (map, replay of N tokens): g = 2 and 4, prompt batches that cross blocks, generation
    "main_token_by_token": (LlamaCppSelfExtend(2, 8, batch_size=1), replay_main(N, 2, 8, batch_size=1)),
    "main_default_batch": (LlamaCppSelfExtend(4, 16, batch_size=32, prompt_length=70),
                           replay_main(N, 4, 16, batch_size=32, prompt_length=70)),
    "main_batches_across_blocks": (LlamaCppSelfExtend(2, 8, batch_size=11, prompt_length=60),
                                   replay_main(N, 2, 8, batch_size=11, prompt_length=60)),
    "passkey_example": (LlamaCppPasskey(4, 24, prompt_length=75), replay_passkey(N, 4, 24, prompt_length=75)),
}


@pytest.mark.parametrize("implementation", ["reference", "fast"])
@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_prefill_equals_the_replayed_positions(model, case, implementation):
    method, replay = CASES[case]
    ids = tokens(N)
    expected = replay_logits(model, ids, replay)
    with MappedPositions(model, method, implementation=implementation) as handle:
        got = model(ids, attention_mask=torch.ones_like(ids)).logits
        assert handle.calls == 2
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert (expected - model(ids).logits).abs().max() > 1e-4  # the schedule really bites: 10x the tolerance


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_cached_prefix_then_decoding_equals_the_replay(model, case):
    """A prefix of 50 into a DynamicCache, 20 more tokens against it, then one token at a time."""
    method, replay = CASES[case]
    ids = tokens(N)
    expected = replay_logits(model, ids, replay)
    with MappedPositions(model, method):
        cache = transformers.DynamicCache(config=model.config)
        parts = [model(ids[:, :50], cache=cache, use_cache=True).logits,
                 model(ids[:, 50:70], cache=cache, use_cache=True).logits]
        parts += [model(ids[:, t:t + 1], cache=cache, use_cache=True).logits for t in range(70, N)]
    torch.testing.assert_close(torch.cat(parts, dim=1), expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_selfextend_map_equals_the_selfextend_handle(model):
    ids = tokens(120, seed=4)
    with SelfExtend(model, 4, 16):
        expected = model(ids).logits
    with MappedPositions(model, SelfExtendMap(4, 16)):
        torch.testing.assert_close(model(ids).logits, expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_three_region_map_and_method_swap(model):
    """ReRoPE (a constant far position) runs; ``.method`` may be replaced between forwards."""
    ids = tokens(60, seed=5)
    with MappedPositions(model, ReRoPE(16)) as handle:
        rerope = model(ids).logits
        handle.method = SelfExtendMap(1, 16)  # g = 1: ordinary positions
        plain = model(ids).logits
    torch.testing.assert_close(plain, model(ids).logits, atol=1e-5, rtol=1e-5)
    assert (rerope - plain).abs().max() > 1e-4


@torch.no_grad()
def test_remove_restores_the_model_bit_for_bit(model):
    ids = tokens(40, seed=6)
    before = model(ids).logits
    handle = MappedPositions(model, LlamaCppSelfExtend(2, 8, batch_size=1))
    handle.remove()
    assert torch.equal(model(ids).logits, before)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="method must be a selfextend.methods.PositionMap"):
        MappedPositions(model, "llamacpp")
    with pytest.raises(ValueError, match="drops keys"):
        MappedPositions(model, LMInfinite(32, n_local=16, n_global=2))
    with pytest.raises(ValueError, match="implementation must be one of"):
        MappedPositions(model, ReRoPE(16), implementation="cuda")
    with MappedPositions(model, ReRoPE(16)) as handle:
        with pytest.raises(ValueError, match="method must be"):
            handle.method = 3
        ids = torch.tensor([[0, 5, 6, 7], [5, 6, 7, 8]])
        with pytest.raises(ValueError, match="padding is not supported"):
            model(ids, attention_mask=torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
