"""The paper, figure by figure, on SmolLM2-135M: one resumable command (Jin et al., 2024, Sec. 3-4).

    python -m selfextend.hf.paper_results                    # every unit (hours on 2 cores; resumable)
    python -m selfextend.hf.paper_results --only fig2 table1 # some parts
    python -m selfextend.hf.paper_results --model tiny --quick --out results/x.json   # seconds

Parts (``--only``), each a list of *units*; a unit is computed once and kept:
  fig2     Fig. 2: grouped attention alone (every position p // g, no neighbor window) for
           g = 2, 4, 8, 16 against plain: loss over the first N = 16,384 tokens of Hamlet.
  table1   Table 1: perplexity of the first 2k, 4k, ..., 16k tokens for every method, with the
           sliding-window rows (Mistral-7B's W = 4,096 and W = 2,048) through ``SlidingWindow``.
  passkey  Fig. 4: passkey retrieval, length x depth x keys, plain / sliding window / SelfExtend,
           the same keys for every method; one unit per (method, length, depth).
  ablation the group size x window study: loss at 16k for g in {2, 4, 8, 16, 32} x w in {256, 512, 1024, 2048}.
  llamacpp SelfExtend as llama.cpp runs it (``selfextend.methods.llamacpp``, through ``MappedPositions``):
           loss by position to 16k and the Fig. 4 grid (same prompts, same keys) for examples/main's
           schedule at the paper's g = 8, w = 1024 (default batch 2048; token by token) and the passkey
           example's at its default batch, beside plain and the exact rule. Its own file
           (``experiments/smollm2_llamacpp_results.json``); units equal to ones of the paper's file are
           taken from it.

Loss units run ONE forward of N tokens (``perplexity.token_nll``, which always passes an explicit
attention mask: non-consecutive position ids never switch transformers to packed sequences) and keep
the mean NLL per 256-token bin and the perplexity of every 2k prefix (causal attention: the first K
losses of an N-token forward are those of a K-token one). A loss unit whose model, text, N and
method equal one of ``experiments/smollm2_real_results.json`` (notebook 11's run) is taken from
its per-token losses instead of computed again (``borrowed_from`` says so).

Passkey units: ``passkey_prompt`` (``--prompt explicit``: the needle said twice, the question naming the
five-digit form; see ``selfextend.hf.passkey``), greedy decoding of ``--max-new-tokens``. The three keys of one (length,
depth) share their haystack, so the tokens before the needle are identical: they are read once into a
KV cache and each key continues from a copy of it (exact: a cached prefix gives the logits of the whole
prompt, tested in ``tests/test_paper_results.py``). Only the last position's logits are formed.

Resumable: the output JSON is rewritten (atomically) after every finished unit, with ``complete`` and
the keys still ``pending`` (of its file: ``llamacpp`` has one of its own, the other parts share one);
commit it and a later run (another day, another session) computes only
what is missing. A unit is reused while its settings are unchanged. ``--fresh`` recomputes all.
``--model tiny``: a tiny random Llama (context 128, windows scaled) with SmolLM2's tokenizer, for tests.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

from .._files import write_json_atomic
from ..memory import peak_rss_mib, reset_peak_rss
from .passkey import CommandParser, first_number, load_tokenizer, maybe_selfextend, passkey_prompt
from .perplexity import text_file, token_nll
from .real_results import (BIN, PRETRAINED, TINY_CONTEXT, committed_results, llamacpp_map, load,  # noqa: F401
                           method_label, method_reach, scaled_window, summarize_losses,
                           versions)  # labels, reach: for notebooks 12 and 13
from .smollm2 import MODEL_NAME as SMOLLM2

DEFAULT_OUT = "experiments/smollm2_paper_results.json"
LLAMACPP_OUT = "experiments/smollm2_llamacpp_results.json"
REAL_RESULTS = "experiments/smollm2_real_results.json"
PARTS = ("fig2", "table1", "passkey", "ablation")  # the paper, figure by figure: one file
SUITES = {DEFAULT_OUT: PARTS, LLAMACPP_OUT: ("llamacpp",)}  # default file -> the parts it holds
ALL_PARTS = (*PARTS, "llamacpp")
FIG2_GROUPS = (2, 4, 8, 16)
TABLE1_METHODS = ("plain", "swa-w4096", "swa-w2048", "selfextend-g8-w1024", "selfextend-g4-w2048",
                  "selfextend-g2-w1024", "dynamic-ntk", "yarn")
PASSKEY_METHODS = ("plain", "swa-w4096", "selfextend-g8-w1024")
ABLATION_GROUPS = (2, 4, 8, 16, 32)
ABLATION_WINDOWS = (256, 512, 1024, 2048)
LLAMACPP_LOSS_METHODS = ("plain", "selfextend-g8-w1024", "llamacpp-main-g8-w1024-b2048", "llamacpp-main-g8-w1024-b1")
LLAMACPP_PASSKEY_METHODS = ("plain", "selfextend-g8-w1024", "llamacpp-main-g8-w1024-b2048", "llamacpp-passkey-g8-b2048")
STEP = 2048  # Table 1's grid: the perplexity of the first 2k, 4k, ... tokens


def committed_paper_results(path: str | Path | None = None) -> dict:
    """The committed report (``experiments/smollm2_paper_results.json`` of this repository), or ``path``'s."""
    if path is None:
        from ..tiny.model import checkpoints_dir

        path = checkpoints_dir().parent / DEFAULT_OUT
    return json.loads(Path(path).read_text(encoding="utf-8"))


def committed_llamacpp_results() -> dict:
    """The committed llama.cpp report of this repository (``experiments/smollm2_llamacpp_results.json``)."""
    from ..tiny.model import checkpoints_dir

    return committed_paper_results(checkpoints_dir().parent / LLAMACPP_OUT)


def method_settings(name: str, context: int, n_tokens: int) -> dict:
    """A method name -> what it does on this model (windows scaled to ``context`` for the tiny model).

    plain; grouped-g{g} (positions p // g); swa-w{W}; selfextend-g{g}-w{w}; dynamic-ntk; yarn;
    llamacpp-main-g{g}-w{w}-b{b} (examples/main, batch b; b1: token by token); llamacpp-passkey-g{g}-b{b}.
    """
    if name == "plain":
        return {"kind": "plain"}
    for kind in ("llamacpp-main", "llamacpp-passkey"):
        if name.startswith(kind + "-"):
            parts = dict((p[0], int(p[1:])) for p in name[len(kind) + 1:].split("-"))
            method = {"kind": kind, "group_size": parts["g"]}
            if kind == "llamacpp-main":
                method["window"] = scaled_window(parts["w"], context)
            batch = parts["b"] if parts["b"] == 1 else scaled_window(parts["b"], context)
            method["batch_size"] = batch
            llamacpp_map(method)  # ValueError on a schedule llama.cpp refuses (w % g, b % g)
            return method
    if name in ("dynamic-ntk", "yarn"):
        return {"kind": "rope", "rope_type": "dynamic" if name == "dynamic-ntk" else "yarn",
                "factor": max(1.0, n_tokens / context)}
    parts = dict((p[0], int(p[1:])) for p in name.split("-")[1:])
    if name.startswith("grouped-"):
        return {"kind": "grouped", "group_size": parts["g"], "attention_mask": "explicit"}
    if name.startswith("swa-"):
        return {"kind": "swa", "window": scaled_window(parts["w"], context)}
    if name.startswith("selfextend-"):
        return {"kind": "selfextend", "group_size": parts["g"], "window": scaled_window(parts["w"], context)}
    raise ValueError(f"unknown method {name!r}")


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------

def passkey_keys(seed: int, length: int, depth: float, trials: int) -> list[str]:
    """The 5-digit keys of one (length, depth) cell: the same for every method."""
    rng = random.Random(f"{seed}/{length}/{depth}")
    return [str(rng.randrange(10_000, 100_000)) for _ in range(trials)]


def plan(args, context: int) -> list[dict]:
    """Every unit of the chosen parts, in the order they run: {"key", "part", "task", "method", "settings"}."""
    common = {"model": args.model, "seed": args.seed}
    units, seen = [], set()

    def loss(part: str, name: str, key: str | None = None):
        if (part, name) in seen:
            return
        seen.add((part, name))
        settings = {**common, "text": args.text, "tokens": args.tokens, "bin_size": BIN, "step": args.step,
                    "method": method_settings(name, context, args.tokens)}
        units.append({"key": key or f"{part}/{name}", "part": part, "task": "loss", "method": name,
                      "settings": settings})

    def passkey(part: str, names):  # short lengths first, methods side by side: a partial run has whole columns
        for length in args.lengths:
            for depth in args.depths:
                for name in names:
                    settings = {**common, "length": length, "depth": depth, "trials": args.trials,
                                "prompt": args.prompt, "max_new_tokens": args.max_new_tokens,
                                "method": method_settings(name, context, length)}
                    units.append({"key": f"passkey/{name}/{length}/{depth:g}", "part": part, "task": "passkey",
                                  "method": name, "settings": settings})

    if "fig2" in args.only:
        for name in ["plain", *(f"grouped-g{g}" for g in args.fig2_groups)]:
            loss("fig2", name)
    if "table1" in args.only:
        for name in args.table1_methods:
            loss("table1", name)
    if "passkey" in args.only:
        passkey("passkey", args.passkey_methods)
    if "ablation" in args.only:
        for g in args.ablation_groups:
            for w in args.ablation_windows:
                loss("ablation", f"selfextend-g{g}-w{w}")
    if "llamacpp" in args.only:
        for name in args.llamacpp_loss_methods:
            loss("llamacpp", name, key=f"loss/{name}")
        passkey("llamacpp", args.llamacpp_passkey_methods)
    return units


def loss_result(nll: list[float], step: int) -> dict:
    """Bins of 256 and the perplexity of every ``step``-token prefix, from per-token NLL [N - 1]."""
    summary = summarize_losses(nll, BIN)
    n = len(nll) + 1
    grid = {}
    for k in range(step, n + 1, step):
        mean = math.fsum(nll[:k - 1]) / (k - 1)
        grid[str(k)] = round(math.exp(mean), 4)
    return {"bin_size": BIN, "bin_nll": summary["bin_nll"], "perplexity_at": grid,
            "nll": round(math.fsum(nll) / len(nll), 6)}


def borrowed(unit: dict, real: dict | None, paper: dict | None = None) -> dict | None:
    """The unit's result from another committed run that computed the same thing, or None.

    ``paper``: the paper's file (``smollm2_paper_results.json``), for the llama.cpp file's exact-rule
    and plain units (identical settings); ``real``: notebook 11's run, for loss units (per-token losses).
    """
    for key, other in ({} if paper is None else paper.get("units", {})).items():
        if other.get("task") == unit["task"] and other.get("settings") == unit["settings"]:
            result = {k: v for k, v in other.items() if k not in ("part", "task", "method", "settings")}
            return {**result, "borrowed_from": f"{Path(DEFAULT_OUT).name}:{key}"}
    if real is None or unit["task"] != "loss":
        return None
    want = {k: unit["settings"][k] for k in ("model", "seed", "text", "tokens", "bin_size")}
    for key, other in real.get("units", {}).items():
        s = other.get("settings", {})
        if (other.get("task") == "loss" and "per_token_nll" in other and s.get("method") == unit["settings"]["method"]
                and {k: s.get(k) for k in want} == want):
            return {**loss_result(other["per_token_nll"], unit["settings"]["step"]),
                    "borrowed_from": f"{Path(REAL_RESULTS).name}:{key}", "seconds": other["seconds"],
                    "peak_rss_mb": other["peak_rss_mb"]}
    return None


@contextlib.contextmanager
def applied(model, method: dict):
    """The model with the method switched on: SelfExtend, SlidingWindow, a llama.cpp schedule or nothing.

    Yields the handle (None for plain): a llama.cpp schedule's ``.method`` is set per prompt (its length).
    """
    if method["kind"] == "selfextend":
        with maybe_selfextend(model, method["group_size"], method["window"]) as handle:
            yield handle
    elif method["kind"] == "swa":
        from .sliding_window import SlidingWindow

        with SlidingWindow(model, method["window"]) as handle:
            yield handle
    elif method["kind"].startswith("llamacpp-"):
        from .position_maps import MappedPositions

        with MappedPositions(model, llamacpp_map(method)) as handle:  # the whole input is the prompt
            yield handle
    else:
        yield None


def model_for(method: dict, args, tokenizer, base_model):
    """The base model, or a fresh one with dynamic NTK / YaRN RoPE."""
    if method["kind"] == "rope":
        return load(args.model, tokenizer, method["rope_type"], method["factor"])
    return base_model


def run_loss(unit: dict, model, token_ids: torch.Tensor) -> dict:
    """One forward of the first N tokens -> bins and the 2k grid."""
    method, settings = unit["settings"]["method"], unit["settings"]
    ids = token_ids[:settings["tokens"]]
    positions = torch.arange(ids.numel()) // method["group_size"] if method["kind"] == "grouped" else None
    with applied(model, method):
        nll = token_nll(model, ids, position_ids=positions).tolist()
    return loss_result(nll, settings["step"])


@torch.no_grad()
def greedy_from(model, cache, ids: torch.Tensor, start: int, max_new_tokens: int, stop: set[int]) -> list[int]:
    """Greedy tokens after ``ids`` [n], the cache holding its first ``start`` tokens (None: no cache).

    Only the last position's logits are formed (``logits_to_keep=1``); explicit attention masks of ones.
    """
    from transformers import DynamicCache

    cache = DynamicCache() if cache is None else cache
    new, past = [], start
    step = ids[start:][None]
    for _ in range(max_new_tokens):
        total = past + step.shape[1]
        out = model(input_ids=step, cache=cache, use_cache=True, logits_to_keep=1,
                    attention_mask=torch.ones(1, total, dtype=torch.long),
                    position_ids=torch.arange(past, total)[None])
        token = int(out.logits[0, -1].argmax())
        new.append(token)
        if token in stop:
            break
        past, step = total, torch.tensor([[token]])
    return new


@torch.no_grad()
def run_passkey_cell(unit: dict, model, tokenizer) -> dict:
    """The trials of one (method, length, depth): keys, answers, correct, from a shared prefix cache."""
    from transformers import DynamicCache

    s = unit["settings"]
    keys = passkey_keys(s["seed"], s["length"], s["depth"], s["trials"])
    stop = {t for t in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")) if t is not None}
    records = []
    with applied(model, s["method"]) as handle:
        prefix_cache, prefix_ids = None, None
        for trial, key in enumerate(keys):
            before, after = passkey_prompt(tokenizer, s["length"], s["depth"], key, style=s["prompt"])
            ids = torch.tensor(before + after)
            if s["method"]["kind"].startswith("llamacpp-"):
                # llama.cpp's schedule turns from prompt to answer after len(ids) tokens. Its prompt tokens'
                # positions do not depend on where the prompt ends, so the shared prefix cache stays valid.
                handle.method = llamacpp_map(s["method"], prompt_length=len(ids))
            if prefix_ids is None or prefix_ids != before:  # the cells' keys share ``before`` (same haystack)
                prefix_ids, prefix_cache = before, None
                if len(before) > 1:
                    prefix_cache = DynamicCache()
                    model(input_ids=torch.tensor([before]), cache=prefix_cache, use_cache=True,
                          logits_to_keep=1, attention_mask=torch.ones(1, len(before), dtype=torch.long),
                          position_ids=torch.arange(len(before))[None])
            cache = copy.deepcopy(prefix_cache) if prefix_cache is not None else None
            start = len(before) if cache is not None else 0
            new = greedy_from(model, cache, ids, start, s["max_new_tokens"], stop)
            answer = tokenizer.decode(new, skip_special_tokens=True)
            records.append({"passkey": key, "prompt_tokens": len(ids), "answer": answer,
                            "correct": first_number(answer) == key})
    return {"correct": sum(r["correct"] for r in records), "trials": records}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def build_parser() -> CommandParser:
    """The command line of ``python -m selfextend.hf.paper_results``."""
    parser = CommandParser(prog="python -m selfextend.hf.paper_results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=(SMOLLM2, "tiny"), default=SMOLLM2,
                        help="smollm2 (the real model) or tiny (a random Llama with context 128, for tests)")
    parser.add_argument("--only", nargs="+", choices=ALL_PARTS, default=list(PARTS),
                        help=f"the parts to run (default: {' '.join(PARTS)}; llamacpp has a file of its own)")
    parser.add_argument("--text", default="hamlet", help="a text file or a held-out play (the loss parts)")
    parser.add_argument("--tokens", type=int, default=None, help=f"N of the loss forwards (a multiple of {BIN} and of --step; "
                                                                 "default 16384, --quick 512)")
    parser.add_argument("--step", type=int, default=None, help="Table 1's grid step (default 2048, --quick 128)")
    parser.add_argument("--fig2-groups", type=int, nargs="+", default=list(FIG2_GROUPS), help="Fig. 2's g")
    parser.add_argument("--table1-methods", nargs="+", default=list(TABLE1_METHODS), help="Table 1's rows")
    parser.add_argument("--passkey-methods", nargs="+", default=list(PASSKEY_METHODS), help="Fig. 4's methods")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="passkey prompt lengths (default 2048 4096 8192 12288 16384; --quick 256 384)")
    parser.add_argument("--depths", type=float, nargs="+", default=None,
                        help="needle depths in [0, 1] (default 0 0.25 0.5 0.75 1; --quick 0 1)")
    parser.add_argument("--trials", type=int, default=3, help="keys per (length, depth), the same for every method")
    parser.add_argument("--prompt", default="explicit", help="passkey prompt style (selfextend.hf.passkey.PROMPT_STYLES)")
    parser.add_argument("--max-new-tokens", type=int, default=10, help="greedy tokens generated per prompt")
    parser.add_argument("--ablation-groups", type=int, nargs="+", default=list(ABLATION_GROUPS), help="ablation g")
    parser.add_argument("--ablation-windows", type=int, nargs="+", default=list(ABLATION_WINDOWS),
                        help="ablation w (tokens, for an 8192-token model)")
    parser.add_argument("--llamacpp-loss-methods", nargs="+", default=list(LLAMACPP_LOSS_METHODS),
                        help="llamacpp part: loss by position")
    parser.add_argument("--llamacpp-passkey-methods", nargs="+", default=list(LLAMACPP_PASSKEY_METHODS),
                        help="llamacpp part: the passkey grid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pass keys")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny settings (with --model tiny: seconds)")
    parser.add_argument("--out", default=None, help=f"the results JSON, rewritten after every unit (default "
                                                    f"{DEFAULT_OUT}, or {LLAMACPP_OUT} for --only llamacpp)")
    parser.add_argument("--fresh", action="store_true", help="recompute every unit")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop after computing this many units (0: only take what other runs computed)")
    parser.add_argument("--no-borrow", action="store_true",
                        help=f"compute every unit here (never take one from {REAL_RESULTS}, or for llamacpp from "
                             f"the {Path(DEFAULT_OUT).name} next to --out)")
    return parser


def check_arguments(parser: CommandParser, args: argparse.Namespace) -> None:
    """Fill the --quick defaults; one-line exit 2 on bad values (before any model loads)."""
    from .passkey import PROMPT_STYLES

    if args.tokens is None:
        args.tokens = 512 if args.quick else 16384
    if args.step is None:
        args.step = 128 if args.quick else STEP
    if args.lengths is None:
        args.lengths = [256, 384] if args.quick else [2048, 4096, 8192, 12288, 16384]
    if args.depths is None:
        args.depths = [0.0, 1.0] if args.quick else [0.0, 0.25, 0.5, 0.75, 1.0]
    if args.step < 2:
        parser.error(f"--step must be >= 2 tokens, got {args.step}")
    if args.tokens < args.step or args.tokens % args.step or args.tokens % BIN:
        parser.error(f"--tokens must be a positive multiple of {BIN} and of --step ({args.step}), got {args.tokens}")
    for flag, values in (("--fig2-groups", args.fig2_groups), ("--ablation-groups", args.ablation_groups),
                         ("--ablation-windows", args.ablation_windows)):
        if any(v < 1 for v in values):
            parser.error(f"{flag} must all be >= 1, got {values}")
    if "llamacpp" in args.only and len(args.only) > 1:
        parser.error(f"--only llamacpp runs alone (its file is {LLAMACPP_OUT}); got --only {' '.join(args.only)}")
    args.suite = ("llamacpp",) if "llamacpp" in args.only else PARTS
    if args.out is None:
        args.out = LLAMACPP_OUT if args.suite == ("llamacpp",) else DEFAULT_OUT
    context = TINY_CONTEXT if args.model == "tiny" else PRETRAINED
    for name in [*args.table1_methods, *args.passkey_methods, *args.llamacpp_loss_methods,
                 *args.llamacpp_passkey_methods]:
        try:
            method = method_settings(name, context, args.tokens)
        except ValueError as error:
            if name.startswith("llamacpp-") and "must be" in str(error):
                parser.error(f"{name}: {error}")
            method = None
        except (KeyError, IndexError):
            method = None
        if method is None:
            parser.error(f"unknown method {name!r}; e.g. plain, swa-w4096, selfextend-g8-w1024, grouped-g2, "
                         "dynamic-ntk, yarn, llamacpp-main-g8-w1024-b2048, llamacpp-passkey-g8-b2048")
        if method.get("window", 0) >= context and method["kind"] == "selfextend":
            parser.error(f"{name}: the window must be below the model's {context} positions")
    if any(not 0.0 <= d <= 1.0 for d in args.depths):
        parser.error(f"--depths must be in [0, 1], got {args.depths}")
    for flag, value in (("--trials", args.trials), ("--threads", args.threads),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    if args.stop_after is not None and args.stop_after < 0:
        parser.error(f"--stop-after must be >= 0 (0: only take the units other runs computed), got {args.stop_after}")
    if args.prompt not in PROMPT_STYLES:
        parser.error(f"--prompt must be one of {', '.join(PROMPT_STYLES)}, got {args.prompt!r}")
    try:
        args.text_path = text_file(args.text)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--text {args.text}: {error}")


def report(args, context: int, units: list[dict], done: dict, sha: str | None) -> dict:
    """The JSON: settings, versions, every finished unit of ``units`` (all parts), ``complete``, ``pending`` keys."""
    pending = [u["key"] for u in units if u["key"] not in done]
    passkey = {"lengths": args.lengths, "depths": args.depths, "trials": args.trials, "prompt": args.prompt,
               "max_new_tokens": args.max_new_tokens}
    if args.suite == ("llamacpp",):
        parts = {"llamacpp_loss_methods": args.llamacpp_loss_methods,
                 "llamacpp_passkey_methods": args.llamacpp_passkey_methods, **passkey}
    else:
        parts = {"fig2_groups": args.fig2_groups, "table1_methods": args.table1_methods,
                 "passkey_methods": args.passkey_methods, **passkey, "ablation_groups": args.ablation_groups,
                 "ablation_windows": args.ablation_windows}
    return {"model": args.model, "gguf_sha256": sha, "versions": versions(), "complete": not pending,
            "pending": pending,
            "settings": {"text": args.text_path.name, "tokens": args.tokens, "step": args.step, "bin_size": BIN,
                         **parts, "seed": args.seed, "threads": args.threads, "quick": args.quick,
                         "max_position_embeddings": context},
            "units": {u["key"]: done[u["key"]] for u in units if u["key"] in done}}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    try:
        tokenizer = load_tokenizer(SMOLLM2)  # the tiny model uses SmolLM2's tokenizer too
    except ValueError as error:
        parser.error(str(error))
    context = TINY_CONTEXT if args.model == "tiny" else PRETRAINED
    token_ids = None
    if any(p in args.only for p in ("fig2", "table1", "ablation", "llamacpp")):
        text = args.text_path.read_text(encoding="utf-8")
        token_ids = torch.tensor(tokenizer(text, add_special_tokens=True)["input_ids"], dtype=torch.long)
        if token_ids.numel() < args.tokens:
            parser.error(f"--tokens {args.tokens}: {args.text_path.name} has only {token_ids.numel()} tokens")

    from tqdm.auto import tqdm

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    done = {}
    if out.exists() and not args.fresh:
        done = json.loads(out.read_text()).get("units", {})
    real = paper = None
    if not args.no_borrow and args.model == SMOLLM2:
        with contextlib.suppress(FileNotFoundError):
            real = committed_results()
    if not args.no_borrow and args.suite == ("llamacpp",):  # the paper's file next to this one
        with contextlib.suppress(FileNotFoundError):
            paper = json.loads((out.parent / Path(DEFAULT_OUT).name).read_text(encoding="utf-8"))
    every = plan(argparse.Namespace(**{**vars(args), "only": list(args.suite)}), context)  # what the file must hold
    units = [u for u in every if u["part"] in args.only]  # what this run computes
    wanted = {u["key"]: u["settings"] for u in every}
    done = {k: v for k, v in done.items() if wanted.get(k) == v["settings"]}  # stale settings: computed again
    sha = None
    if args.model == SMOLLM2:
        from .smollm2 import verified_gguf

        sha = verified_gguf()[1]
    todo = [u for u in units if u["key"] not in done]
    print(f"{len(units) - len(todo)} of {len(units)} units already done ({out}); {len(todo)} to run", flush=True)
    free = {u["key"]: borrowed(u, real, paper) for u in todo}  # results other committed runs hold, or None
    todo.sort(key=lambda u: free[u["key"]] is None)  # free units first (stable: the plan's order otherwise)
    base_model, computed = None, 0
    for unit in tqdm(todo, desc="paper results", unit="unit", file=sys.stdout):
        result = free[unit["key"]]
        if result is None:
            if args.stop_after is not None and computed >= args.stop_after:
                print(f"stopped after {computed} units (--stop-after); rerun to resume", flush=True)
                break
            if base_model is None:
                base_model = load(args.model, tokenizer)
            reset_peak_rss()
            started = time.time()
            model = model_for(unit["settings"]["method"], args, tokenizer, base_model)
            if unit["task"] == "loss":
                result = run_loss(unit, model, token_ids)
            else:
                result = run_passkey_cell(unit, model, tokenizer)
            result.update(seconds=round(time.time() - started, 1), peak_rss_mb=round(peak_rss_mib(), 1))
            computed += 1
        done[unit["key"]] = {"part": unit["part"], "task": unit["task"], "method": unit["method"],
                             "settings": unit["settings"], **result}
        write_json_atomic(report(args, context, every, done, sha), out)
        print(f"{unit['key']}: {done[unit['key']]['seconds']} s"
              + (f" (from {result['borrowed_from']})" if "borrowed_from" in result else ""), flush=True)
    write_json_atomic(report(args, context, every, done, sha), out)
    left = sum(u["key"] not in done for u in every)
    print(f"wrote {out}: " + ("complete" if not left else f"{left} units pending; rerun to resume"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
