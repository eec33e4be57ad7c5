"""Every number of the SmolLM2 long-context results in one resumable command (Jin et al., 2024, Sec. 4).

    python -m selfextend.hf.real_results                      # the full run (about 1.5 h on 2 cores)
    python -m selfextend.hf.real_results --model tiny --quick --out results/x.json   # seconds

Loss by position: Hamlet (a held-out play of ``selfextend.tiny.corpus``), the first N tokens (16,384),
ONE forward per method; the per-token next-token NLL is kept, averaged per 256-token bin, and the
mean NLL / perplexity of the first N/4, N/2, 3N/4, N tokens (4k, 8k, 12k, 16k) is read from the same
per-token losses (causal attention: the first K losses of an N-token forward are those of a K-token one).
Methods: plain; SelfExtend (g, w) = (4, 2048), (8, 1024) and (2, 1024), whose reach
(8192 - 1024) * 2 + 1024 = 15,360 < 16,384 (Eq. 4) is too short, so the break shows; grouped attention
alone, g = 2 (the experiment behind the paper's neighbor window: every token at position p // g, queries and
keys alike, no neighbor window; the unmodified model given position ids p // 2, the mildest grouping,
which still reaches 2 * 8192 = 16,384 tokens); and transformers'
training-free RoPE baselines, dynamic NTK and YaRN with factor N / 8192, set through
``config.rope_parameters`` at load. The plain and SelfExtend g=8, w=1024 forwards also keep the input of
layer 15's attention, from which the attention of its 9 heads over the first 3N/4 tokens (12k) is
pooled (``selfextend.hf.head_attention``). Passkey: ``selfextend.hf.passkey``'s prompts and greedy
decoding, plain against SelfExtend g=8, w=1024, 4k to 16k. Beyond: the three SelfExtend settings over
the first 32k tokens, and the passkey of g=8, w=1024 at 32k.

Resumable: each finished unit (task x method) goes to a partial file next to ``--out`` right away; a
rerun skips the units whose settings match, in the partial file or in an earlier final JSON at ``--out``
(so adding a method computes only its units); the final JSON (settings, versions, GGUF sha256, per-unit
seconds and peak RSS) is written atomically once every unit is done. ``--fresh`` recomputes everything.
``--model tiny``: a tiny random Llama (max_position_embeddings 128, windows scaled by 128 / 8192) with
SmolLM2's tokenizer, for the tests.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .._files import write_json_atomic
from ..memory import peak_rss_mib, reset_peak_rss
from ..positions import max_context_length
from ..tiny.corpus import HELD_OUT_PLAYS
from .passkey import CommandParser, build_prompt, load_tokenizer, run_passkey
from .head_attention import capture_attention_input, layer_queries_keys, pooled_attention
from .perplexity import text_file, token_nll
from .smollm2 import MODEL_NAME as SMOLLM2

PRETRAINED = 8192  # SmolLM2's max_position_embeddings; the (g, w) below are for it
SMOLLM2_LAYERS = 30
TINY_CONTEXT = 128  # --model tiny
BIN = 256
DEFAULT_OUT = "experiments/smollm2_real_results.json"
# name -> (kind, parameters); SelfExtend windows are for an 8192-token model (scaled for --model tiny)
METHODS = {
    "plain": ("plain", {}),
    "selfextend-g4-w2048": ("selfextend", {"group_size": 4, "window": 2048}),
    "selfextend-g8-w1024": ("selfextend", {"group_size": 8, "window": 1024}),
    "selfextend-g2-w1024": ("selfextend", {"group_size": 2, "window": 1024}),  # reach 15,360: too short
    "grouped-only-g2": ("grouped", {"group_size": 2}),  # position ids p // 2 for every token
    "dynamic-ntk": ("rope", {"rope_type": "dynamic"}),
    "yarn": ("rope", {"rope_type": "yarn"}),
}
PASSKEY_METHODS = ("plain", "selfextend-g8-w1024")
# Beyond 16k, for SelfExtend only (plain has broken long before): loss over the first 32k tokens and passkey
# at 32k. At 32k the reach of g4w2048 (26,624) and of g2w1024 (15,360) end inside the input; g2w1024's
# largest position there, 32767 // 2 + 512 = 16,895, is past where the plain model breaks (about 1.4 L).
LONG_METHODS = ("selfextend-g8-w1024", "selfextend-g4-w2048", "selfextend-g2-w1024")
LONG_PASSKEY_METHODS = ("selfextend-g8-w1024",)
ATTENTION_METHODS = ("plain", "selfextend-g8-w1024")  # their loss forwards also give the head attention map
ATTENTION_CELLS, ATTENTION_ROW_CELLS = 64, 384  # the pooled map is 64 x 64; the last query's row has 384 bins


def committed_results(path: str | Path | None = None) -> dict:
    """The committed report (``experiments/smollm2_real_results.json`` of this repository), or ``path``'s."""
    if path is None:
        from ..tiny.model import checkpoints_dir

        path = checkpoints_dir().parent / DEFAULT_OUT
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def tiny_config(vocab_size: int):
    """A tiny Llama config (2 layers, 4 heads / 2 KV heads, head_dim 8, context 128) for the tests."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
                       rope_theta=10000.0, tie_word_embeddings=True)


def with_rope(config, rope_type: str | None, factor: float):
    """A copy of ``config`` whose RoPE is ``rope_type`` (dynamic NTK, YaRN) with ``factor``; None: unchanged."""
    config = copy.deepcopy(config)
    if rope_type is not None:
        params = dict(config.rope_parameters)  # transformers 5: {"rope_type": "default", "rope_theta": ...}
        params.update(rope_type=rope_type, factor=float(factor),
                      original_max_position_embeddings=config.max_position_embeddings)
        config.rope_parameters = params
    return config


def load(model_name: str, tokenizer, rope_type: str | None = None, factor: float = 1.0):
    """(model in eval mode, float32, CPU): SmolLM2 from its cache, or the seeded tiny random Llama."""
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaForCausalLM

    if model_name == "tiny":
        config = with_rope(tiny_config(len(tokenizer)), rope_type, factor)
        torch.manual_seed(0)  # the same weights for every RoPE variant (RoPE has no parameters)
        return LlamaForCausalLM(config).eval()
    from .smollm2 import smollm2_folder

    folder = smollm2_folder()
    config = with_rope(AutoConfig.from_pretrained(folder), rope_type, factor)
    return AutoModelForCausalLM.from_pretrained(folder, config=config, dtype=torch.float32).eval()


def scaled_window(window: int, context: int) -> int:
    """A window for an 8192-token model, scaled to ``context`` (the tiny model): at least 1."""
    return window if context == PRETRAINED else max(1, window * context // PRETRAINED)


# ---------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------

def summarize_losses(nll: list[float], bin_size: int) -> dict:
    """Mean NLL per bin of target positions (bin k: tokens k*bin .. (k+1)*bin - 1; token 0 is never
    predicted) and mean NLL / perplexity of the first N/4, N/2, 3N/4, N tokens."""
    n = len(nll) + 1  # tokens; nll[t - 1] is the loss of predicting token t
    bins = []
    for start in range(0, n, bin_size):
        part = nll[max(start, 1) - 1:start + bin_size - 1]
        bins.append(sum(part) / len(part))
    prefixes = {}
    for k in (n // 4, n // 2, 3 * n // 4, n):
        mean = sum(nll[:k - 1]) / (k - 1)
        prefixes[str(k)] = {"nll": round(mean, 6), "perplexity": round(math.exp(mean), 6)}
    return {"bin_size": bin_size, "bin_nll": [round(b, 6) for b in bins], "prefix": prefixes}


def block_nll(unit: dict, size: int) -> np.ndarray:
    """Mean NLL of each block of ``size`` target tokens (block k: tokens k*size .. (k+1)*size - 1), float64 [blocks],
    from a unit's bins (``summarize_losses``: bin 0 holds bin_size - 1 predictions, token 0 is never predicted)."""
    bins = np.asarray(unit["bin_nll"], dtype=np.float64)
    bin_size = unit["bin_size"]
    if not isinstance(size, int) or size < bin_size or size % bin_size or len(bins) % (size // bin_size):
        raise ValueError(f"size must be a multiple of the bin size {bin_size} that divides the "
                         f"{len(bins) * bin_size} tokens into whole blocks, got {size!r}")
    counts = np.full(bins.shape, float(bin_size))
    counts[0] -= 1
    per = size // bin_size
    return (bins * counts).reshape(-1, per).sum(1) / counts.reshape(-1, per).sum(1)


# ---------------------------------------------------------------------------------------------
# Units and the partial file
# ---------------------------------------------------------------------------------------------

def method_settings(name: str, context: int, n_tokens: int) -> dict:
    """What a method does on this model: kind, g and w (scaled), or the RoPE type and factor."""
    kind, params = METHODS[name]
    if kind == "selfextend":
        return {"kind": kind, "group_size": params["group_size"], "window": scaled_window(params["window"], context)}
    if kind == "grouped":  # "explicit": token_nll passes the attention mask, so p // g is never read as packed
        return {"kind": kind, "group_size": params["group_size"], "attention_mask": "explicit"}
    if kind == "rope":
        return {"kind": kind, "rope_type": params["rope_type"], "factor": max(1.0, n_tokens / context)}
    return {"kind": kind}


def method_label(method: dict) -> str:
    """A unit's method settings as a legend label: "SelfExtend g=8 w=1024", "grouped only (p // 2)",
    "sliding window W=4096", ..."""
    if method["kind"] == "selfextend":
        return f"SelfExtend g={method['group_size']} w={method['window']}"
    if method["kind"] == "grouped":
        return f"grouped only (p // {method['group_size']})"
    if method["kind"] == "swa":
        return f"sliding window W={method['window']}"
    if method["kind"] == "rope":
        name = {"dynamic": "dynamic NTK", "yarn": "YaRN"}.get(method["rope_type"], method["rope_type"])
        return f"{name} x{method['factor']:g}"
    if method["kind"] == "llamacpp-main":
        batch = "token by token" if method["batch_size"] == 1 else f"b={method['batch_size']}"
        return f"llama.cpp main g={method['group_size']} w={method['window']} {batch}"
    if method["kind"] == "llamacpp-passkey":
        return f"llama.cpp passkey g={method['group_size']} b={method['batch_size']}"
    return "plain"


def method_reach(method: dict, context: int) -> int | None:
    """The longest input whose relative positions all stay below ``context``: Eq. 4 for SelfExtend,
    context * g for grouped attention alone, a search over N for llama.cpp's schedules (read as one
    prompt), context itself for plain, None for the rest (a sliding
    window never leaves the range; the RoPE rescalings have no such bound)."""
    if method["kind"] == "selfextend":
        return max_context_length(context, method["group_size"], method["window"])
    if method["kind"] == "grouped":
        return context * method["group_size"]
    if method["kind"].startswith("llamacpp-"):  # the largest N whose largest relative position is below context
        position_map = llamacpp_map(method)
        low, high = context, context * method["group_size"] + 1  # fits / does not (the map is never past p // g)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if position_map.largest_relative_position(middle) < context else (low, middle)
        return low
    return context if method["kind"] == "plain" else None


def llamacpp_map(method: dict, prompt_length: int | None = None):
    """A llamacpp-main / llamacpp-passkey method's position map (``selfextend.methods.llamacpp``)."""
    from ..methods import LlamaCppPasskey, LlamaCppSelfExtend

    if method["kind"] == "llamacpp-main":
        return LlamaCppSelfExtend(method["group_size"], method["window"], method["batch_size"], prompt_length)
    return LlamaCppPasskey(method["group_size"], method["batch_size"], prompt_length)


def attention_settings(n_tokens: int, n_layers: int) -> dict:
    """Where the head attention map is read: the middle layer, over the first 3N/4 tokens."""
    tokens = 3 * n_tokens // 4  # N is a multiple of 256, so 3N/4 is a multiple of 64
    row_block = max(1, tokens // ATTENTION_ROW_CELLS)
    while tokens % row_block:
        row_block -= 1
    return {"layer": n_layers // 2, "tokens": tokens, "block": tokens // ATTENTION_CELLS, "row_block": row_block}


def plan(args, context: int, n_layers: int) -> list[dict]:
    """Every unit: {"key", "task", "method", "settings"}; settings decide whether a saved unit is reusable."""
    common = {"model": args.model, "seed": args.seed}
    units = []
    for name in args.methods:
        settings = {**common, "text": args.text, "tokens": args.tokens, "bin_size": BIN,
                    "method": method_settings(name, context, args.tokens)}
        if name in ATTENTION_METHODS:
            settings["attention"] = attention_settings(args.tokens, n_layers)
        units.append({"key": f"loss/{name}", "task": "loss", "method": name, "settings": settings})
    for name in args.long_methods:  # bins and prefixes only: no per-token losses, no attention map
        settings = {**common, "text": args.text, "tokens": args.long_tokens, "bin_size": BIN,
                    "method": method_settings(name, context, args.long_tokens)}
        units.append({"key": f"loss-long/{name}", "task": "loss", "method": name, "settings": settings})
    for prefix, names, lengths in (("passkey", args.passkey_methods, args.lengths),
                                   ("passkey-long", args.long_passkey_methods, args.long_lengths)):
        for name in names:
            settings = {**common, "lengths": lengths, "depths": args.depths, "trials": args.trials,
                        "max_new_tokens": args.max_new_tokens, "method": method_settings(name, context, max(lengths))}
            units.append({"key": f"{prefix}/{name}", "task": "passkey", "method": name, "settings": settings})
    return units


def partial_path(out: Path) -> Path:
    """experiments/x.json -> experiments/.x.partial.json (git-ignored)."""
    return out.with_name(f".{out.stem}.partial.json")


def run_unit(unit: dict, args, tokenizer, token_ids: torch.Tensor, base_model) -> dict:
    """Compute one unit -> its result (without timing)."""
    from .passkey import maybe_selfextend

    method = unit["settings"]["method"]
    model = base_model
    if method["kind"] == "rope":
        model = load(args.model, tokenizer, method["rope_type"], method["factor"])
    g, w = (method["group_size"], method["window"]) if method["kind"] == "selfextend" else (1, 1)
    try:
        if unit["task"] == "loss":
            ids = token_ids[:unit["settings"]["tokens"]]
            positions = torch.arange(ids.numel()) // method["group_size"] if method["kind"] == "grouped" else None
            attention = unit["settings"].get("attention")
            capture = None
            with contextlib.ExitStack() as stack:
                stack.enter_context(maybe_selfextend(model, g, w))
                if attention is not None:
                    layer = model.model.layers[attention["layer"]].self_attn
                    capture = stack.enter_context(capture_attention_input(layer, attention["tokens"]))
                nll = token_nll(model, ids, position_ids=positions).tolist()
            result = summarize_losses(nll, BIN)
            if unit["key"].startswith("loss/"):
                result["per_token_nll"] = [round(x, 3) for x in nll]
            if capture is not None:
                result["attention"] = head_attention_result(model, attention, capture.hidden, g, w)
            return result
        result = run_passkey(model, tokenizer, unit["settings"]["lengths"], args.depths, args.trials, g, w, args.seed,
                             args.max_new_tokens)
        return {"accuracy": result["accuracy"], "trials": result["trials"]}
    finally:
        if model is not base_model:
            del model


def significant(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (attention masses span many decades)."""
    return float(f"{x:.{digits}g}")


def head_attention_result(model, attention: dict, hidden: torch.Tensor, group_size: int, window: int) -> dict:
    """The pooled attention map and last-query row of every head of the captured layer."""
    module = model.model.layers[attention["layer"]].self_attn
    q, k = layer_queries_keys(module, hidden)
    pooled, last_row = pooled_attention(q, k, model.model.rotary_emb.inv_freq, module.scaling,
                                        group_size=group_size, window=window, block=attention["block"],
                                        row_block=attention["row_block"])
    return {"heads": q.shape[0],
            "map": [[[significant(x) for x in row] for row in head] for head in pooled.tolist()],
            "last_row": [[significant(x) for x in head] for head in last_row.tolist()]}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def build_parser() -> CommandParser:
    """The command line of ``python -m selfextend.hf.real_results``."""
    parser = CommandParser(prog="python -m selfextend.hf.real_results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=(SMOLLM2, "tiny"), default=SMOLLM2,
                        help="smollm2 (the real model) or tiny (a random Llama with context 128, for tests)")
    parser.add_argument("--text", default="hamlet", help=f"a text file or a held-out play: {', '.join(HELD_OUT_PLAYS)}")
    parser.add_argument("--tokens", type=int, default=None, help=f"N, tokens of the loss forward (multiple of {BIN}; "
                                                                 "default 16384, --quick 512)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help=f"loss methods: {', '.join(METHODS)}")
    parser.add_argument("--passkey-methods", nargs="*", default=list(PASSKEY_METHODS), help="passkey methods")
    parser.add_argument("--long-tokens", type=int, default=None,
                        help="tokens of the long loss forwards (default 32768, --quick 1024)")
    parser.add_argument("--long-methods", nargs="*", default=list(LONG_METHODS), help="loss methods run at --long-tokens")
    parser.add_argument("--long-lengths", type=int, nargs="+", default=None,
                        help="passkey lengths beyond 16k (default 32768; --quick 768)")
    parser.add_argument("--long-passkey-methods", nargs="*", default=list(LONG_PASSKEY_METHODS),
                        help="passkey methods run at --long-lengths")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="passkey prompt lengths (default 4096 8192 12288 16384; --quick 256 512)")
    parser.add_argument("--depths", type=float, nargs="+", default=None,
                        help="passkey needle depths in [0, 1] (default 0 0.5 1; --quick 0.5)")
    parser.add_argument("--trials", type=int, default=1, help="pass keys per (length, depth)")
    parser.add_argument("--max-new-tokens", type=int, default=12, help="greedy tokens generated per prompt")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pass keys")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="tiny settings: N=512, lengths 256 512, depth 0.5")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the final JSON (the partial file goes beside it)")
    parser.add_argument("--fresh", action="store_true", help="recompute every unit (ignore the partial file and an earlier final JSON)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after computing this many units (tests)")
    return parser


def check_arguments(parser: CommandParser, args: argparse.Namespace) -> None:
    """Fill the --quick defaults; one-line exit 2 on bad values (before any model loads)."""
    if args.tokens is None:
        args.tokens = 512 if args.quick else 16384
    if args.lengths is None:
        args.lengths = [256, 512] if args.quick else [4096, 8192, 12288, 16384]
    if args.long_tokens is None:
        args.long_tokens = 1024 if args.quick else 32768
    if args.long_lengths is None:
        args.long_lengths = [768] if args.quick else [32768]
    if args.depths is None:
        args.depths = [0.5] if args.quick else [0.0, 0.5, 1.0]
    for name in [*args.methods, *args.passkey_methods, *args.long_methods, *args.long_passkey_methods]:
        if name not in METHODS:
            parser.error(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    for flag, tokens in (("--tokens", args.tokens), ("--long-tokens", args.long_tokens)):
        if tokens < BIN or tokens % BIN:
            parser.error(f"{flag} must be a positive multiple of {BIN}, got {tokens}")
    if any(not 0.0 <= d <= 1.0 for d in args.depths):
        parser.error(f"--depths must be in [0, 1], got {args.depths}")
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.stop_after is not None and args.stop_after < 1:
        parser.error(f"--stop-after must be >= 1, got {args.stop_after}")
    try:
        args.text_path = text_file(args.text)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--text {args.text}: {error}")


def versions() -> dict:
    """torch, transformers and selfextend versions."""
    import importlib.metadata

    import transformers

    try:
        own = importlib.metadata.version("selfextend")
    except importlib.metadata.PackageNotFoundError:
        own = "unknown"
    return {"torch": torch.__version__, "transformers": transformers.__version__, "selfextend": own,
            "python": sys.version.split()[0]}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    try:
        tokenizer = load_tokenizer(SMOLLM2)  # the tiny model uses SmolLM2's tokenizer too
    except ValueError as error:
        parser.error(str(error))
    shortest = len(tokenizer(build_prompt(tokenizer, 10**9, 0.0, "0" * 5, n_sentences=0))["input_ids"])
    for flag, names, lengths in (("--lengths", args.passkey_methods, args.lengths),
                                 ("--long-lengths", args.long_passkey_methods, args.long_lengths)):
        if names and min(lengths) < shortest:
            parser.error(f"{flag} must all be >= {shortest} tokens (preamble + needle + question), got {lengths}")
    text = args.text_path.read_text(encoding="utf-8")
    token_ids = torch.tensor(tokenizer(text, add_special_tokens=True)["input_ids"], dtype=torch.long)
    for flag, names, tokens in (("--tokens", args.methods, args.tokens), ("--long-tokens", args.long_methods,
                                                                            args.long_tokens)):
        if names and token_ids.numel() < tokens:
            parser.error(f"{flag} {tokens}: {args.text_path.name} has only {token_ids.numel()} tokens")

    from tqdm.auto import tqdm

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    partial_file = partial_path(out)
    if args.fresh and partial_file.exists():
        partial_file.unlink(missing_ok=True)
    done = {}
    if out.exists() and not args.fresh:  # a finished run: its units are reused where the settings match
        done.update(json.loads(out.read_text()).get("units", {}))
    if partial_file.exists():
        done.update(json.loads(partial_file.read_text()).get("units", {}))
    context = TINY_CONTEXT if args.model == "tiny" else PRETRAINED
    n_layers = 2 if args.model == "tiny" else SMOLLM2_LAYERS
    units = plan(args, context, n_layers)
    todo = [u for u in units if done.get(u["key"], {}).get("settings") != u["settings"]]
    print(f"{len(units) - len(todo)} of {len(units)} units already done ({partial_file}); {len(todo)} to run",
          flush=True)
    base_model = load(args.model, tokenizer) if todo else None
    if base_model is not None and base_model.config.num_hidden_layers != n_layers:
        raise RuntimeError(f"expected {n_layers} layers, the model has {base_model.config.num_hidden_layers}")
    computed = 0
    for unit in tqdm(todo, desc="real results", unit="unit", file=sys.stdout):
        if args.stop_after is not None and computed >= args.stop_after:
            print(f"stopped after {computed} units (--stop-after); rerun to resume", flush=True)
            return 0
        reset_peak_rss()
        started = time.time()
        result = run_unit(unit, args, tokenizer, token_ids, base_model)
        done[unit["key"]] = {"task": unit["task"], "method": unit["method"], "settings": unit["settings"],
                             "seconds": round(time.time() - started, 1), "peak_rss_mb": round(peak_rss_mib(), 1), **result}
        write_json_atomic({"units": done}, partial_file)
        computed += 1
        print(f"{unit['key']}: {done[unit['key']]['seconds']} s", flush=True)
    sha = None
    if args.model == SMOLLM2:
        from .smollm2 import verified_gguf

        sha = verified_gguf()[1]
    report = {"model": args.model, "gguf_sha256": sha, "versions": versions(),
              "settings": {"text": args.text_path.name, "text_tokens": token_ids.numel(), "tokens": args.tokens,
                           "bin_size": BIN, "methods": args.methods, "passkey_methods": args.passkey_methods,
                           "lengths": args.lengths, "depths": args.depths, "trials": args.trials,
                           "long_tokens": args.long_tokens, "long_methods": args.long_methods,
                           "long_lengths": args.long_lengths, "long_passkey_methods": args.long_passkey_methods,
                           "seed": args.seed, "threads": args.threads, "quick": args.quick,
                           "max_position_embeddings": context},
              "units": {u["key"]: done[u["key"]] for u in units}}
    write_json_atomic(report, out)
    partial_file.unlink(missing_ok=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
