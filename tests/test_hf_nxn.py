"""The Hugging Face path allocates nothing of size N x N for an unpadded batch; padding still works.

Without padding the mask function returns None and the kernel runs with its default causal mask;
positions come from the cache position. With padding the boolean mask is materialised and the
positions are counted from it once per forward, not once per layer.
"""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import selfextend.hf.integration as integration  # noqa: E402
from selfextend.hf import SelfExtend  # noqa: E402
from test_hf import VOCAB, logits, reference_logits, tokens  # noqa: E402

N = 2048  # a bool N x N mask is 4 MiB; nothing else in this tiny model comes close
GROUP, WINDOW = 4, 256


def long_llama(layers: int = 2) -> torch.nn.Module:
    """A tiny random Llama (hidden 64, vocab 97) whose pretrained range 1024 covers N = 2048 with g = 4."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=1024, initializer_range=0.2,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
    )
    return transformers.LlamaForCausalLM(config).eval()


def masks_reaching_attention(model) -> tuple[list, list]:
    """Record the attention_mask every attention layer is called with (forward pre-hooks)."""
    seen = []

    def record(module, args, kwargs):
        seen.append(kwargs.get("attention_mask"))

    hooks = [layer.self_attn.register_forward_pre_hook(record, with_kwargs=True) for layer in model.model.layers]
    return seen, hooks


def largest_allocation(fn) -> int:
    """The largest number of bytes one operator allocated while ``fn`` ran (torch.profiler, CPU)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(event.self_cpu_memory_usage for event in prof.events())


def test_unpadded_prefill_allocates_nothing_of_size_n_by_n():
    model = long_llama()
    ids = tokens(N)
    ones = torch.ones(1, N, dtype=torch.long)
    with SelfExtend(model, GROUP, WINDOW, implementation="fast"):
        unpadded = largest_allocation(lambda: model(input_ids=ids, attention_mask=ones))
        padded_mask = ones.clone()
        padded_mask[0, :3] = 0
        padded = largest_allocation(lambda: model(input_ids=ids, attention_mask=padded_mask))
    assert unpadded < N * N, f"an allocation of {unpadded} bytes >= N*N = {N * N} for an unpadded prefill"
    # the check can fail: the padded batch does build a [1, 1, N, N] bool mask (and more)
    assert padded >= N * N


@pytest.mark.parametrize("cache", ["none", "dynamic", "static"])
def test_unpadded_batch_reaches_attention_without_a_mask(cache):
    model = long_llama()
    ids = tokens(40, batch=2)
    seen, hooks = masks_reaching_attention(model)
    kwargs = {"use_cache": False}
    if cache == "dynamic":
        kwargs = {"use_cache": True}
    if cache == "static":
        kwargs = {"use_cache": True, "cache": transformers.StaticCache(config=model.config, max_cache_len=64)}
    with SelfExtend(model, 3, 8) as handle, torch.no_grad():
        out = model(input_ids=ids[:, :30], attention_mask=torch.ones(2, 30, dtype=torch.long), **kwargs)
        if cache != "none":  # one decode step against the cache
            model(input_ids=ids[:, 30:31], cache=out.past_key_values, use_cache=True)
    for hook in hooks:
        hook.remove()
    assert seen and all(mask is None for mask in seen)
    assert handle.position_counts == 0  # nothing counted from a mask


def test_padded_batch_reaches_attention_with_a_mask_counted_once_per_forward(monkeypatch):
    model = long_llama(layers=4)
    ids = tokens(40, batch=2)
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[0, :7] = 0  # left padding in row 0
    counted = []
    original = integration.positions_from_mask

    def counting(m):
        counted.append(tuple(m.shape))
        return original(m)

    monkeypatch.setattr(integration, "positions_from_mask", counting)
    seen, hooks = masks_reaching_attention(model)
    with SelfExtend(model, 3, 8) as handle, torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
        assert handle.calls == 4 and handle.position_counts == 1
        model(input_ids=ids, attention_mask=mask)  # a second forward counts again, once
    for hook in hooks:
        hook.remove()
    assert len(seen) == 8 and all(isinstance(m, torch.Tensor) and m.shape[-2:] == (40, 40) for m in seen)
    assert counted == [(2, 1, 40, 40)] * 2


@pytest.mark.parametrize("implementation", ["auto", "fast", "reference"])
def test_padded_batch_past_the_fast_threshold_equals_rows_alone(implementation):
    """Left and right padding at a length where "auto" takes the fast kernel; rows against the reference."""
    model = long_llama()
    long, short = tokens(200, seed=4), tokens(150, seed=5)
    pad = 50
    zeros = torch.zeros(1, pad, dtype=torch.long)
    left = torch.cat((torch.cat((zeros, short), 1), long))
    left_mask = torch.cat((torch.cat((zeros, torch.ones_like(short)), 1), torch.ones_like(long)))
    right = torch.cat((torch.cat((short, zeros), 1), long))
    right_mask = torch.cat((torch.cat((torch.ones_like(short), zeros), 1), torch.ones_like(long)))
    expected_short = reference_logits(model, short, GROUP, 64)
    expected_long = reference_logits(model, long, GROUP, 64)
    with SelfExtend(model, GROUP, 64, implementation=implementation):
        batch_left = logits(model, left, attention_mask=left_mask)
        batch_right = logits(model, right, attention_mask=right_mask)
        alone_long = logits(model, long, attention_mask=torch.ones_like(long))  # unpadded: no mask
    torch.testing.assert_close(alone_long, expected_long, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_left[0, pad:], expected_short[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_left[1], expected_long[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_right[0, :150], expected_short[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_right[1], expected_long[0], atol=1e-4, rtol=1e-4)


def test_padded_generate_with_static_cache_equals_rows_alone():
    model = long_llama()
    long, short = tokens(30, seed=2), tokens(21, seed=3)
    pad = 9
    batch = torch.cat((torch.cat((torch.zeros(1, pad, dtype=torch.long), short), 1), long))
    mask = torch.cat((torch.cat((torch.zeros(1, pad), torch.ones(1, 21)), 1), torch.ones(1, 30))).long()
    settings = dict(max_new_tokens=12, do_sample=False, pad_token_id=0)
    with SelfExtend(model, 3, 8):
        together = model.generate(batch, attention_mask=mask, cache_implementation="static", **settings)
        alone_short = model.generate(short, cache_implementation="static", **settings)
        alone_long = model.generate(long, **settings)
    assert torch.equal(together[0, pad:], alone_short[0])
    assert torch.equal(together[1], alone_long[0])


def test_grouped_rotation_table_equals_rotate_by_bit_for_bit():
    """The cached cos/sin table turns q and k exactly as rotate_by does from the shifts, in every case the
    attention function uses: prefill, a decoding step, a longer input (the table grows), partial rotary,
    and a changed inv_freq (dynamic RoPE rebuilds the table)."""
    from selfextend.hf.integration import GroupedRotations, rotate_by
    from selfextend.positions import group_shift

    g, w = 3, 5
    table = GroupedRotations(g, w)
    inv_freq = 1e4 ** (-torch.arange(0, 8, 2, dtype=torch.float32) / 8)
    for n, start, d in ((40, 0, 8), (1, 39, 8), (3000, 0, 8), (2, 2998, 12)):
        x = torch.randn(2, 3, n, d)
        positions = torch.arange(start, start + n)[None].expand(2, n)
        for kind, target in (("query", positions // g + group_shift(g, w)), ("key", positions // g)):
            assert torch.equal(table.rotate(kind, x, start, inv_freq), rotate_by(x, target - positions, inv_freq))
    scaled = inv_freq / 2
    x = torch.randn(1, 2, 10, 8)
    positions = torch.arange(10)[None]
    assert torch.equal(table.rotate("key", x, 0, scaled), rotate_by(x, positions // g - positions, scaled))
