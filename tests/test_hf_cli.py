"""End-to-end runs of `python -m selfextend.hf.passkey` and `python -m selfextend.hf.perplexity` on a tiny
random Llama + word-level tokenizer saved to a temporary folder (no downloads)."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from selfextend.tiny.corpus import FILLER_SENTENCES, QUESTION, needle  # noqa: E402
from selfextend.hf.passkey import PREAMBLE, build_prompt, first_number  # noqa: E402
from selfextend.hf.passkey import main as passkey_main  # noqa: E402
from selfextend.hf.perplexity import main as perplexity_main  # noqa: E402

MAX_POSITIONS = 64
TEXT = "The old man walked to the river . The river was cold and the night was long . " * 30


def _tokenizer():
    """A word-level tokenizer over the words of the prompts, with single digits."""
    words = re.findall(r"\w+|[^\w\s]", " ".join([PREAMBLE, *FILLER_SENTENCES, needle("0"), QUESTION, TEXT]))
    vocab = {"[UNK]": 0, "[PAD]": 1, "<s>": 2, "</s>": 3}
    for word in [*words, *"0123456789"]:
        vocab.setdefault(word, len(vocab))
    model = tokenizers.models.WordLevel(vocab, unk_token="[UNK]")
    tokenizer = tokenizers.Tokenizer(model)
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
        [tokenizers.pre_tokenizers.Whitespace(), tokenizers.pre_tokenizers.Digits(individual_digits=True)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POSITIONS,
        initializer_range=0.2, pad_token_id=1, bos_token_id=2, eos_token_id=3)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run(module: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_first_number():
    assert first_number(" 12345. Remember") == "12345"
    assert first_number(" 1 2 3 4 5 .") == "12345"  # word-level tokenizers decode with spaces
    assert first_number("no digits") is None
    assert first_number("is 123 and 45678") == "123"


def test_build_prompt_length_and_depth(tiny_checkpoint):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_checkpoint)
    for length in (60, 150):
        for depth in (0.0, 0.5, 1.0):
            prompt = build_prompt(tokenizer, length, depth, "54321")
            n = len(tokenizer(prompt)["input_ids"])
            assert length - 8 < n <= length  # within one filler sentence of the target
            assert prompt.startswith(PREAMBLE) and prompt.endswith(QUESTION.rstrip(" "))
            filler = prompt[len(PREAMBLE):-len(QUESTION.rstrip(" "))]
            position = filler.index(needle("54321")) / max(1, len(filler) - len(needle("54321")))
            assert abs(position - depth) < 0.15


def test_passkey_command(tiny_checkpoint, tmp_path):
    out = tmp_path / "passkey"
    result = _run("selfextend.hf.passkey", "--model", tiny_checkpoint, "--group-size", 4, "--window", 8,
                  "--lengths", 60, 120, "--depths", 0, 1, "--trials", 1, "--baseline", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "passkey: 100%" in result.stderr  # the progress bar ran to the end
    assert "selfextend g=4 w=8" in result.stdout and "baseline" in result.stdout
    report = json.loads((out / "passkey.json").read_text())
    assert report["lengths"] == [60, 120] and report["depths"] == [0.0, 1.0]
    for label in ("baseline", "selfextend g=4 w=8"):
        result_ = report["results"][label]
        assert len(result_["accuracy"]) == 2 and len(result_["accuracy"][0]) == 2
        assert len(result_["trials"]) == 2 * 2 * 1
        for trial in result_["trials"]:
            assert trial["correct"] == (first_number(trial["answer"]) == trial["passkey"])
            assert trial["length"] - 8 < trial["prompt_tokens"] <= trial["length"]
        # accuracy = the share of correct trials per (depth, length)
        for di, depth in enumerate(report["depths"]):
            for li, length in enumerate(report["lengths"]):
                hits = [t["correct"] for t in result_["trials"] if t["depth"] == depth and t["length"] == length]
                assert result_["accuracy"][di][li] == sum(hits) / len(hits)
    # the same keys for both methods
    assert [t["passkey"] for t in report["results"]["baseline"]["trials"]] == \
        [t["passkey"] for t in report["results"]["selfextend g=4 w=8"]["trials"]]
    for name in ("passkey_heatmap", "passkey_heatmap_baseline"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.svg").stat().st_size > 0


@pytest.mark.parametrize("arguments, message", [
    (["--group-size", "0", "--lengths", "60"], "--group-size must be >= 1"),
    (["--window", "0", "--lengths", "60"], "--window must be >= 1"),
    (["--lengths", "60", "--depths", "1.5"], "--depths must be in [0, 1]"),
    (["--lengths", "60", "--trials", "0"], "--trials must be >= 1"),
    (["--lengths", "20"], "preamble + needle + question"),
])
def test_passkey_command_rejects_bad_arguments(tiny_checkpoint, capsys, arguments, message):
    with pytest.raises(SystemExit) as stop:
        passkey_main(["--model", str(tiny_checkpoint), *arguments])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_perplexity_command(tiny_checkpoint, tmp_path, capsys):
    text = tmp_path / "book.txt"
    text.write_text(TEXT)
    out = tmp_path / "ppl"
    code = perplexity_main(["--model", str(tiny_checkpoint), "--text", str(text), "--lengths", "8", "48", "120",
                            "--group-size", "4", "--window", "8", "--chunks", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert "first 2 x N tokens" in captured.out and "perplexity: 100%" in captured.err
    report = json.loads((out / "perplexity.json").read_text())
    baseline, extended = report["results"]["baseline"], report["results"]["selfextend g=4 w=8"]
    # independent check: exp(mean loss) of the unmodified model on the same pieces
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    ids = torch.tensor(tokenizer(TEXT)["input_ids"])
    for row in baseline:
        n = row["length"]
        with torch.no_grad():
            losses = [model(input_ids=ids[c * n:(c + 1) * n][None], labels=ids[c * n:(c + 1) * n][None]).loss
                      for c in range(2)]
        assert row["chunks"] == 2 and row["tokens"] == 2 * (n - 1)
        assert math.isclose(row["perplexity"], math.exp(sum(losses) / 2), rel_tol=1e-4)
    # length 8 = window: SelfExtend is the unmodified model; beyond it, it differs
    assert math.isclose(extended[0]["perplexity"], baseline[0]["perplexity"], rel_tol=1e-5)
    assert not math.isclose(extended[2]["perplexity"], baseline[2]["perplexity"], rel_tol=1e-3)


# --- the command lines: one clear baseline flag, one-line errors for a --model that is not there ---------

from selfextend.hf import passkey as passkey_module  # noqa: E402
from selfextend.hf import perplexity as perplexity_module  # noqa: E402


@pytest.mark.parametrize("module, default", [(passkey_module, False), (perplexity_module, True)])
def test_baseline_flag(module, default):
    required = ["--model", "m", "--lengths", "60"] + (["--text", "t"] if module is perplexity_module else [])
    parser = module.build_parser()
    assert parser.parse_args(required).baseline is default  # the stated default
    assert parser.parse_args([*required, "--baseline"]).baseline is True
    assert parser.parse_args([*required, "--no-baseline"]).baseline is False
    assert f"(default: {default})" in " ".join(parser.format_help().split())


def test_methods_follow_the_flag():
    assert passkey_module.methods(4, 8, baseline=True) == [("baseline", 1), ("selfextend g=4 w=8", 4)]
    assert passkey_module.methods(4, 8, baseline=False) == [("selfextend g=4 w=8", 4)]
    assert passkey_module.methods(1, 8, baseline=False) == [("baseline", 1)]  # g = 1 is the unmodified model


def _bad_model_arguments(module, model):
    extra = ["--text", "book.txt"] if module is perplexity_module else []
    return ["--model", str(model), "--lengths", "60", *extra]


@pytest.mark.parametrize("module", [passkey_module, perplexity_module])
@pytest.mark.parametrize("kind", ["missing folder", "unknown name", "invalid repo id", "folder without config"])
def test_wrong_model_is_one_line_and_exit_2(module, kind, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))  # nothing cached, nothing downloaded
    model = {"missing folder": tmp_path / "no" / "such" / "model", "unknown name": "no-such-model-here",
             "invalid repo id": "Repo id!! with spaces", "folder without config": tmp_path}[kind]
    with pytest.raises(SystemExit) as stop:
        module.main(_bad_model_arguments(module, model))
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.strip().splitlines()) == 1 and f"--model {model}" in err and "Traceback" not in err


@pytest.mark.parametrize("module", ["selfextend.hf.passkey", "selfextend.hf.perplexity"])
def test_wrong_model_from_the_shell(module, tmp_path):
    extra = ["--text", "book.txt"] if module.endswith("perplexity") else []
    result = _run(module, "--model", tmp_path / "nowhere", "--lengths", 60, *extra, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"python -m {module}: error: --model {tmp_path / 'nowhere'}: no such folder, and no model of that name "
        "in the local Hugging Face cache (see --help)"]


def test_missing_text_is_one_line(tiny_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        perplexity_main(["--model", str(tiny_checkpoint), "--text", str(tmp_path / "none.txt"), "--lengths", "8"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "none.txt: no such file" in err


def test_model_in_the_local_cache_is_accepted(tmp_path, monkeypatch):
    """A repo id counts when its config.json is in the local Hugging Face cache (no download)."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert passkey_module.local_model("someone/tiny") == ("someone/tiny", True)
