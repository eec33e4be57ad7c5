"""Non-consecutive position ids must not switch transformers into its "packed sequences" mode.

transformers >= 5 reads ``position_ids`` that do not rise by exactly 1, passed with no attention mask
and no cache, as several sequences packed into one row (``masking_utils.find_packed_sequence_indices``)
and masks attention between them. Grouped attention alone (position ids p // g) hit exactly that: a
committed perplexity was 2,095 instead of 67.6 on SmolLM2. ``token_nll`` now always passes the mask.

The independent computation: the same model with transformers' *eager* attention and an explicit 4-D
additive causal mask [1, 1, n, n] (used as given: no mode can switch on), the same position ids, and
the NLL from its logits by a plain ``log_softmax``. Tolerance: the model's own eager-against-sdpa
noise, measured in the test on consecutive positions, times 10 (floor 1e-6).
"""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import naive  # noqa: E402  (tests/naive.py)
from selfextend.hf.perplexity import logits_nll, token_nll  # noqa: E402

N = 96


def tiny_llama() -> torch.nn.Module:
    """A seeded random Llama (3 layers, GQA), float32, sdpa attention."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=101, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      attn_implementation="sdpa")
    return transformers.LlamaForCausalLM(config).eval()


def eager_nll(model, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Next-token NLL [n - 1] (float64) with eager attention and an explicit 4-D causal mask."""
    return naive.eager_token_nll(model, ids, positions)


@pytest.fixture(scope="module")
def setting():
    model = tiny_llama()
    ids = torch.randint(0, 101, (N,), generator=torch.Generator().manual_seed(1))
    consecutive = torch.arange(N)
    noise = (token_nll(model, ids) - eager_nll(model, ids, consecutive)).abs().max().item()
    return model, ids, max(10 * noise, 1e-6)


@pytest.mark.parametrize("group_size", [1, 2, 3, 8])
def test_grouped_positions_see_every_earlier_token(setting, group_size):
    model, ids, tol = setting
    positions = torch.arange(N) // group_size
    ours = token_nll(model, ids, position_ids=positions)
    reference = eager_nll(model, ids, positions)
    assert (ours - reference).abs().max().item() <= tol


def test_the_trap_is_real(setting):
    """Without the mask the same call is a different model (so the test above can fail)."""
    model, ids, _ = setting
    positions = torch.arange(N) // 2
    with torch.no_grad():
        logits = model(input_ids=ids[None], position_ids=positions[None], use_cache=False).logits[0, :-1]
    packed = -torch.log_softmax(logits.double(), dim=-1).gather(-1, ids[1:, None])[:, 0]
    reference = eager_nll(model, ids, positions)
    assert (packed - reference).abs().max().item() > 0.05


def test_consecutive_positions_unchanged(setting):
    """Default positions: the explicit mask changes nothing (bit for bit) against the old maskless call."""
    model, ids, _ = setting
    with torch.no_grad():
        logits = model(input_ids=ids[None], use_cache=False).logits[0, :-1]
    old = -torch.log_softmax(logits.double(), dim=-1).gather(-1, ids[1:, None])[:, 0]
    assert torch.equal(token_nll(model, ids), old)


def test_nll_from_logits_already_computed(setting):
    """logits_nll reuses a forward (notebook 11 reads the plain loss off the logits it compares): token_nll's numbers."""
    model, ids, _ = setting
    with torch.no_grad():
        logits = model(input_ids=ids[None]).logits[0]
    assert torch.equal(logits_nll(logits, ids), token_nll(model, ids))
    assert torch.equal(logits_nll(logits, ids, slice_size=7), token_nll(model, ids))
