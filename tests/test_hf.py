"""SelfExtend on tiny random Hugging Face models of every supported family (no downloads).

The independent reference: the model's rotary embedding is switched to the identity (cos = 1,
sin = 0), so q and k reach attention un-rotated; a reference attention function written here
applies RoPE itself at the SelfExtend positions and loops over the queries.
"""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfextend.hf import SelfExtend, apply, max_supported_length  # noqa: E402

from naive import per_query_logits  # noqa: E402

GROUP, WINDOW = 3, 8
SEQ = 40  # > WINDOW: many grouped keys
VOCAB = 97
COMMON = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=16, max_position_embeddings=256, initializer_range=0.2,
    pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
)


def _config(family: str):
    """A tiny config: 2 layers, hidden 64, 4 query heads on 2 kv heads (GQA), head_dim 16."""
    t = transformers
    if family == "llama":
        return t.LlamaConfig(**COMMON)
    if family == "llama-yarn":  # a rope_scaling type with attention_scaling != 1
        return t.LlamaConfig(**COMMON, rope_parameters={
            "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64})
    if family == "mistral":
        return t.MistralConfig(**COMMON, sliding_window=None)
    if family == "qwen2":
        return t.Qwen2Config(**COMMON)
    if family == "qwen3":
        return t.Qwen3Config(**COMMON)
    if family == "gemma":
        return t.GemmaConfig(**COMMON)
    if family == "gemma2":  # soft-capping; layer 0 local (sliding window 12), layer 1 global
        return t.Gemma2Config(**COMMON, query_pre_attn_scalar=16, attn_logit_softcapping=3.0,
                              final_logit_softcapping=30.0, sliding_window=12,
                              layer_types=["sliding_attention", "full_attention"])
    if family == "gemma3":  # RoPE per layer type: local base 1e4, global base 1e6 with linear scaling
        return t.Gemma3TextConfig(**COMMON, query_pre_attn_scalar=16, sliding_window=12,
                                  layer_types=["sliding_attention", "full_attention"],
                                  rope_parameters={
                                      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                      "full_attention": {"rope_type": "linear", "factor": 2.0,
                                                         "rope_theta": 1000000.0}})
    if family == "phi3":  # partial rotary: only half of each head is rotated
        config = dict(COMMON, pad_token_id=0)
        return t.Phi3Config(**config, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                       "partial_rotary_factor": 0.5})
    raise ValueError(family)


FAMILIES = ["llama", "llama-yarn", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"]


def tiny_model(family: str, attn_implementation: str = "sdpa", dtype=torch.float32):
    """A tiny random causal LM of ``family`` in eval mode (seeded)."""
    torch.manual_seed(0)
    config = _config(family)
    if family == "gemma2":  # soft-capping: transformers runs Gemma-2 with eager attention only
        attn_implementation = "eager"
    config._attn_implementation = attn_implementation
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
    return model.to(dtype).eval()


def tokens(n: int, seed: int = 1, batch: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, n), generator=generator)


@torch.no_grad()
def logits(model, ids, **kwargs) -> torch.Tensor:
    return model(input_ids=ids, **kwargs).logits.float()


# ---------------------------------------------------------------------------------------------
# The independent reference
# ---------------------------------------------------------------------------------------------

def selfextend_rule(group_size: int, window: int):
    """The paper's rule for query i, written out: exact positions at i - j < w, else i // g + w - w // g and j // g
    (a local layer of a sliding-window family: plain RoPE inside its window)."""
    def attend(i, sliding_window):
        j = torch.arange(i + 1)
        if sliding_window is not None:
            j = j[i - j < sliding_window]
            return j, torch.full_like(j, i), j
        far = (i - j) >= window
        q_pos = torch.where(far, torch.full_like(j, i // group_size + window - window // group_size), torch.full_like(j, i))
        return j, q_pos, torch.where(far, j // group_size, j)
    return attend


def reference_logits(model, ids, group_size=GROUP, window=WINDOW) -> torch.Tensor:
    """Logits with the test's reference attention (tests/naive.py: one query at a time, RoPE applied there)."""
    return per_query_logits(model, ids, selfextend_rule(group_size, window)).float()


# ---------------------------------------------------------------------------------------------
# Tests: equality with the unmodified model and with the reference
# ---------------------------------------------------------------------------------------------

KERNELS = [(family, "auto") for family in FAMILIES] + [
    (family, "fast") for family in ("llama", "gemma2", "phi3")]  # the lean kernel behind "auto"


@pytest.mark.parametrize("family, implementation", KERNELS)
def test_prefill_and_cached_decode_match_reference(family, implementation):
    model = tiny_model(family)
    ids = tokens(SEQ)
    expected = reference_logits(model, ids)
    plain = logits(model, ids)
    with SelfExtend(model, GROUP, WINDOW, implementation=implementation):
        prefill = logits(model, ids, use_cache=False)
        # cached decoding: prefill 24 tokens (with grouped keys), then one token at a time
        out = model(input_ids=ids[:, :24], use_cache=True)
        steps, cache = [out.logits.float()], out.past_key_values
        for t in range(24, SEQ):
            out = model(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True)
            steps.append(out.logits.float())
            cache = out.past_key_values
        decoded = torch.cat(steps, dim=1)
    # the test can fail: SelfExtend changes these logits a lot compared with plain attention
    assert (plain - expected).abs().max() > 1e-2
    assert torch.allclose(plain[:, :WINDOW], expected[:, :WINDOW], atol=1e-4)
    torch.testing.assert_close(prefill, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(decoded, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_cases_equal_unmodified_model(family):
    model = tiny_model(family, attn_implementation="eager")
    ids = tokens(SEQ)
    plain = logits(model, ids)
    with SelfExtend(model, group_size=1, window=WINDOW):  # g = 1: grouped positions are the ordinary ones
        grouped_by_one = logits(model, ids)
    with SelfExtend(model, group_size=4, window=SEQ):  # the whole sequence inside the window
        inside_window = logits(model, ids)
    torch.testing.assert_close(grouped_by_one, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inside_window, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gemma3", "phi3"])
def test_generate_with_cache_equals_without(family):
    model = tiny_model(family)
    ids = tokens(12)
    settings = dict(max_new_tokens=14, do_sample=False, pad_token_id=0)
    with SelfExtend(model, GROUP, 6):
        cached = model.generate(ids, use_cache=True, **settings)
        uncached = model.generate(ids, use_cache=False, **settings)
        static = model.generate(ids, cache_implementation="static", **settings)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, static)
    with torch.no_grad():
        plain = model.generate(ids, **settings)
    assert not torch.equal(cached, plain)  # SelfExtend did change the continuation


@pytest.mark.parametrize("family, implementation", [
    ("llama", "auto"), ("qwen3", "auto"), ("gemma2", "auto"), ("gemma3", "auto"), ("phi3", "auto"),
    ("llama", "fast"), ("gemma2", "fast")])
def test_padded_batch_equals_rows_alone(family, implementation):
    model = tiny_model(family)
    long, short = tokens(30, seed=2), tokens(21, seed=3)
    pad = 30 - 21
    left = torch.cat((torch.cat((torch.zeros(1, pad, dtype=torch.long), short), 1), long))
    left_mask = torch.cat((torch.cat((torch.zeros(1, pad), torch.ones(1, 21)), 1), torch.ones(1, 30))).long()
    right = torch.cat((torch.cat((short, torch.zeros(1, pad, dtype=torch.long)), 1), long))
    right_mask = left_mask.flip(1)
    with SelfExtend(model, GROUP, WINDOW, implementation=implementation):
        alone_short, alone_long = logits(model, short), logits(model, long)
        batch_left = logits(model, left, attention_mask=left_mask)
        batch_right = logits(model, right, attention_mask=right_mask)
        settings = dict(max_new_tokens=10, do_sample=False, pad_token_id=0)
        generated = model.generate(left, attention_mask=left_mask, **settings)
        generated_short = model.generate(short, **settings)
    assert torch.isfinite(batch_left).all() and torch.isfinite(batch_right).all()  # padding rows stay finite
    torch.testing.assert_close(batch_left[0, pad:], alone_short[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_left[1], alone_long[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_right[0, :21], alone_short[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(batch_right[1], alone_long[0], atol=1e-4, rtol=1e-4)
    assert torch.equal(generated[0, pad:], generated_short[0])


@pytest.mark.parametrize("family, attn_implementation", [("gemma2", "eager"), ("llama", "sdpa"), ("gemma3", "eager")])
def test_remove_restores_bit_exact_outputs(family, attn_implementation):
    model = tiny_model(family, attn_implementation=attn_implementation)
    ids = tokens(SEQ)
    before = logits(model, ids)
    handle = apply(model, GROUP, WINDOW)
    changed = logits(model, ids)
    handle.remove()
    handle.remove()  # idempotent
    after = logits(model, ids)
    with SelfExtend(model, GROUP, WINDOW) as extended:
        assert extended.active
    after_context = logits(model, ids)
    assert not torch.equal(changed, before)
    assert torch.equal(after, before) and torch.equal(after_context, before)
    assert model.config._attn_implementation == attn_implementation
    assert not extended.active


@pytest.mark.parametrize("implementation", ["auto", "fast"])
def test_static_cache_prefill_and_decode_match_reference(implementation):
    model = tiny_model("llama")
    ids = tokens(SEQ)
    expected = reference_logits(model, ids)
    cache = transformers.StaticCache(config=model.config, max_cache_len=64)
    with SelfExtend(model, GROUP, WINDOW, implementation=implementation), torch.no_grad():
        out = model(input_ids=ids[:, :5], cache=cache, use_cache=True)  # all inside the window
        steps = [out.logits.float()]
        for t in range(5, SEQ):  # decoding crosses the window boundary
            steps.append(model(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True).logits.float())
    torch.testing.assert_close(torch.cat(steps, 1), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_bfloat16_close_to_float32(family):
    ids = tokens(SEQ)
    model = tiny_model(family)
    expected = reference_logits(model, ids)
    half = tiny_model(family, dtype=torch.bfloat16)
    plain_error = (logits(half, ids) - logits(model, ids)).abs().max()
    with SelfExtend(half, GROUP, WINDOW):
        extended = logits(half, ids)
    assert torch.isfinite(extended).all()
    # bf16 SelfExtend is as close to the fp32 reference as bf16 plain attention is to fp32 plain attention
    assert (extended - expected).abs().max() < 2 * plain_error + 0.05


# ---------------------------------------------------------------------------------------------
# Tests: errors and warnings
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -1, 2.5, True, "8"])
def test_bad_group_size_and_window(value):
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="group_size"):
        SelfExtend(model, value, WINDOW)
    with pytest.raises(ValueError, match="window"):
        apply(model, GROUP, value)
    assert model.config._attn_implementation == "sdpa"


def test_window_must_be_inside_pretrained_range():
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="window must be smaller .*max_position_embeddings .*256"):
        SelfExtend(model, GROUP, 256)


def test_sliding_window_everywhere_is_refused_until_disabled():
    config = _config("mistral")
    config.sliding_window = 16
    torch.manual_seed(0)
    model = transformers.MistralForCausalLM(config).eval()
    with pytest.raises(ValueError, match=r"sliding_window = None"):
        SelfExtend(model, GROUP, WINDOW)
    assert model.config._attn_implementation == "sdpa"
    model.config.sliding_window = None  # as the paper does for Mistral
    with SelfExtend(model, GROUP, WINDOW):
        logits(model, tokens(SEQ))
    # switching the window back on while applied is caught at run time
    with SelfExtend(model, GROUP, WINDOW):
        model.config.sliding_window = 16
        with pytest.raises(ValueError, match="sliding_window = None"):
            logits(model, tokens(SEQ))
    model.config.sliding_window = None


def test_attention_that_never_reaches_selfextend_fails_loudly():
    model = tiny_model("llama")
    with SelfExtend(model, GROUP, WINDOW):
        model.set_attn_implementation("eager")  # attention now bypasses SelfExtend
        with pytest.raises(RuntimeError, match="never reached"):
            logits(model, tokens(SEQ))


class HardCodedAttention(torch.nn.Module):
    """An attention layer that computes softmax(qk) itself instead of dispatching by name."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.layer_idx, self.config = inner, inner.layer_idx, inner.config

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def test_attention_class_without_interface_is_refused():
    model = tiny_model("llama")
    layer = model.model.layers[1]
    layer.self_attn = HardCodedAttention(layer.self_attn)
    with pytest.raises(ValueError, match="AttentionInterface"):
        SelfExtend(model, GROUP, WINDOW)


def test_applying_twice_is_refused():
    model = tiny_model("llama")
    with SelfExtend(model, GROUP, WINDOW):
        with pytest.raises(ValueError, match="already applied"):
            apply(model, 2, 4)


def test_warns_beyond_extended_context():
    model = tiny_model("llama")
    model.config.max_position_embeddings = 32
    limit = max_supported_length(32, 2, WINDOW)  # (32 - 8) * 2 + 8 = 56
    assert limit == 56
    with SelfExtend(model, 2, WINDOW):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            logits(model, tokens(limit))  # exactly at the limit: no warning
        with pytest.warns(UserWarning, match=r"57 tokens exceeds .*= 56"):
            logits(model, tokens(limit + 1))


def test_import_selfextend_without_transformers():
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "import selfextend\n"
        "assert 'selfextend.hf' not in sys.modules\n"
        "try:\n"
        "    import selfextend.hf as hf; hf.apply\n"
        "except ImportError as e:\n"
        "    raise SystemExit('unexpected: ' + str(e))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
