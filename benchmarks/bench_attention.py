"""Time and peak memory of SelfExtend attention: torch SDPA (the floor), the naive merge, and the fast path.

    python benchmarks/bench_attention.py            # L = 1k .. 16k prefill, decode with 4k / 16k / 64k caches
    python benchmarks/bench_attention.py --quick    # L = 1k, 2k and a 4k cache: a smoke run in a minute
    python benchmarks/bench_attention.py --long     # also L = 32k (SDPA and the fast path)
    python benchmarks/bench_attention.py --publish  # the committed run (`make bench`): --long, into figures/

Prefill: batch 1, 8 heads, head_dim 64, float32, un-rotated q, k, v of length L; every method pays its
own RoPE:
  sdpa   apply_rope to q and k, then torch's scaled_dot_product_attention(is_causal=True)
  naive  self_extend_attention(implementation="reference"): two L x L logit matrices, merge, softmax
  fast   self_extend_attention(implementation="fast"): selfextend.fast_attention, exact, no L x L matrix
Decode: one new query against a cache of nk keys that is already rotated (a decoder keeps rotated keys;
SelfExtend keeps both rotations, neighbor and grouped), so only the attention step is timed. As in a
model, one step visits several layers' caches (together at least 256 MiB, more than the CPU caches),
so each layer's cache is read from memory; the time is per layer:
  sdpa   scaled_dot_product_attention(q, k, v) for the last query (it sees every key)
  naive / fast   merged_attention(..., implementation="reference" / "fast")

Time: the best of --repeats calls, the three methods interleaved in this one process (so a busy
machine slows all of them alike); ratios are to sdpa. Memory: the rise of peak RSS (VmHWM, reset
through /proc/self/clear_refs) over the RSS after the inputs were made, each case in a fresh
subprocess (tracemalloc does not see torch tensors). The naive method needs about 4.5 L x L x heads
float32 matrices; a case that would need more than --naive-max-gib (or 60% of the free memory) is
skipped with a note instead of running the machine out of memory.

Writes bench_attention.csv and bench_attention.png / .svg into --out (default results/, git-ignored).
Only --publish (the full run with default settings and --long; `make bench`) writes the committed
figures/bench_attention.*: a quick or exploratory run never overwrites them.
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
import torch.nn.functional as F

from selfextend import apply_rope, merged_attention, self_extend_attention
from selfextend.attention import grouped_positions

from common import (available_gib, choose_output, cpu_name, plot_from_csv, reset_peak,  # benchmarks/common.py
                    status_mib, write_csv)

METHODS = ("sdpa", "naive", "fast")
NAIVE_MATRICES = 4.5  # measured: the reference holds about this many [heads, L, L] float32 matrices at its peak
DECODE_LAYER_BYTES = 256 * 2**20  # a decode step visits layers' caches totalling at least this (> the CPU caches)
FIELDS = ["case", "length", "method", "time_ms", "time_vs_sdpa", "peak_mib", "memory_vs_sdpa", "note"]


def prefill_inputs(length: int, heads: int, head_dim: int):
    """Un-rotated q, k, v [1, heads, length, head_dim], float32, seeded."""
    generator = torch.Generator().manual_seed(length)
    return [torch.randn(1, heads, length, head_dim, generator=generator) for _ in range(3)]


def prefill_call(method: str, q, k, v, group: int, window: int):
    """One prefill by ``method`` (every method applies its own RoPE)."""
    if method == "sdpa":
        positions = torch.arange(q.shape[2])
        return F.scaled_dot_product_attention(apply_rope(q, positions), apply_rope(k, positions), v, is_causal=True)
    implementation = "reference" if method == "naive" else "fast"
    return self_extend_attention(q, k, v, group, window, implementation=implementation)


def decode_inputs(cache: int, heads: int, head_dim: int, group: int, window: int):
    """A rotated cache (neighbor and grouped keys, values) and one rotated query at position cache - 1."""
    generator = torch.Generator().manual_seed(cache)
    q, k, v = (torch.randn(1, heads, n, head_dim, generator=generator) for n in (1, cache, cache))
    key_pos = torch.arange(cache)
    query_group, key_group = grouped_positions(key_pos, group, window)
    return {
        "q_neighbor": apply_rope(q, key_pos[-1:]),
        "k_neighbor": apply_rope(k, key_pos),
        "q_grouped": apply_rope(q, query_group[-1:]),
        "k_grouped": apply_rope(k, key_group),
        "v": v,
        "query_positions": None,  # None, None: positions 0 .. cache - 1, the query last (as a decoder knows)
        "key_positions": None,
    }


def decode_call(method: str, inputs: dict, window: int):
    """One decode step by ``method`` on a rotated cache."""
    scale = inputs["q_neighbor"].shape[-1] ** -0.5
    if method == "sdpa":
        return F.scaled_dot_product_attention(inputs["q_neighbor"], inputs["k_neighbor"], inputs["v"], scale=scale)
    implementation = "reference" if method == "naive" else "fast"
    return merged_attention(*inputs.values(), window, scale=scale, implementation=implementation)


def naive_gib(length: int, heads: int) -> float:
    """Estimated peak of the naive method in GiB."""
    return NAIVE_MATRICES * heads * length * length * 4 / 2**30


def naive_skip_note(case: str, length: int, args) -> str:
    """Why the naive method is skipped for this case, or '' to run it."""
    if case == "decode":
        return ""
    need, cap = naive_gib(length, args.heads), min(args.naive_max_gib, 0.6 * available_gib())
    if need > cap:
        return f"skipped: needs ~{need:.0f} GiB (> {cap:.0f} GiB allowed)"
    return ""


def child(args) -> None:
    """Run one case once in this fresh process and print {"peak_mib": ...}: the rise of peak RSS."""
    torch.set_num_threads(args.threads)
    if args.case == "prefill":
        inputs = prefill_inputs(args.length, args.heads, args.head_dim)
        run = lambda: prefill_call(args.method, *inputs, args.group, args.window)  # noqa: E731
    else:
        inputs = decode_inputs(args.length, args.heads, args.head_dim, args.group, args.window)
        run = lambda: decode_call(args.method, inputs, args.window)  # noqa: E731
    gc.collect()
    before = reset_peak()  # the peak-RSS mark is now the current RSS
    with torch.no_grad():
        out = run()
    print(json.dumps({"peak_mib": status_mib("VmHWM") - before, "shape": list(out.shape)}))


def measure_memory(case: str, method: str, length: int, args) -> float:
    """Peak RSS rise (MiB) of one case, in a fresh subprocess."""
    command = [sys.executable, __file__, "--child", "--case", case, "--method", method, "--length", str(length)]
    for flag in ("threads", "heads", "head_dim", "group", "window"):
        command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def time_methods(case: str, length: int, methods: list[str], args) -> dict[str, float]:
    """Best-of-repeats wall time (ms) of each method, interleaved in this process."""
    layers = 1
    if case == "prefill":
        inputs = prefill_inputs(length, args.heads, args.head_dim)
        calls = {m: (lambda m=m: prefill_call(m, *inputs, args.group, args.window)) for m in methods}
    else:
        # A model decodes layer after layer, each reading its own cache: time a step over enough layers'
        # caches that each one is out of the CPU caches when its turn comes, and report it per layer.
        first = decode_inputs(length, args.heads, args.head_dim, args.group, args.window)
        layer_bytes = sum(t.numel() * t.element_size() for t in first.values() if t is not None)
        layers = max(2, -(-DECODE_LAYER_BYTES // layer_bytes))
        stack = [first] + [{k: None if t is None else t.clone() for k, t in first.items()} for _ in range(layers - 1)]
        calls = {m: (lambda m=m: [decode_call(m, inputs, args.window) for inputs in stack]) for m in methods}
    repeats = args.repeats if case == "prefill" else args.decode_repeats
    best = {m: float("inf") for m in methods}
    with torch.no_grad():
        if case == "decode" or length <= 4096:  # warm up (cheap cases only)
            for call in calls.values():
                call()
        for _ in range(repeats):
            for method, call in calls.items():
                start = time.perf_counter()
                call()
                best[method] = min(best[method], (time.perf_counter() - start) / layers)
                gc.collect()
    return {m: 1000 * t for m, t in best.items()}


def run_case(case: str, length: int, args, methods=METHODS) -> list[dict]:
    notes = {m: "" for m in methods}
    notes["naive"] = naive_skip_note(case, length, args) if "naive" in methods else ""
    active = [m for m in methods if not notes[m]]
    times = time_methods(case, length, active, args)
    rows = []
    for method in methods:
        row = {"case": case, "length": length, "method": method, "note": notes[method]}
        if method in active:
            row["time_ms"] = times[method]
            row["peak_mib"] = None if args.no_memory else measure_memory(case, method, length, args)
        rows.append(row)
    base = next(r for r in rows if r["method"] == "sdpa")
    for row in rows:
        if row.get("time_ms") is not None:
            row["time_vs_sdpa"] = row["time_ms"] / base["time_ms"]
        if row.get("peak_mib") is not None and base.get("peak_mib"):
            row["memory_vs_sdpa"] = row["peak_mib"] / base["peak_mib"]
    for row in rows:
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    def number(key, pattern):
        return pattern.format(row[key]) if row.get(key) is not None else "-"

    return (
        f"| {row['case']:7s} | {row['length']:6d} | {row['method']:5s} | {number('time_ms', '{:10.1f}'):>10s} | "
        f"{number('time_vs_sdpa', '{:5.2f}x'):>6s} | {number('peak_mib', '{:8.1f}'):>8s} | "
        f"{number('memory_vs_sdpa', '{:5.2f}x'):>6s} | {row.get('note', '')}"
    )


HEADER = (
    "| case    | length | method |    time ms | vs sdpa | peak MiB | vs sdpa | note\n"
    "|---------|--------|--------|------------|---------|----------|---------|-----"
)


# The settings of the committed run: --publish refuses to write figures/ with any other.
PUBLISHED_SETTINGS = ("lengths", "decode_caches", "repeats", "decode_repeats", "threads", "heads", "head_dim",
                      "group", "window", "naive_max_gib", "no_memory")


def build_parser() -> argparse.ArgumentParser:
    """The command line: every option with its default in --help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384],
                        help="prefill lengths L")
    parser.add_argument("--decode-caches", type=int, nargs="+", default=[4096, 16384, 65536],
                        help="cache sizes of the decode step")
    parser.add_argument("--quick", action="store_true", help="L = 1k, 2k and one 4k cache, 2 repeats (a smoke run)")
    parser.add_argument("--long", action="store_true", help="also L = 32768 (sdpa and fast only)")
    parser.add_argument("--repeats", type=int, default=3, help="prefill calls per method (best is kept)")
    parser.add_argument("--decode-repeats", type=int, default=20, help="decode calls per method (best is kept)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--heads", type=int, default=8, help="attention heads")
    parser.add_argument("--head-dim", type=int, default=64, help="head dimension")
    parser.add_argument("--group", type=int, default=8, help="SelfExtend group size g")
    parser.add_argument("--window", type=int, default=1024, help="SelfExtend neighbor window w")
    parser.add_argument("--naive-max-gib", type=float, default=10.0, help="skip naive cases that need more memory")
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess memory runs")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure from the CSV in --out")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for bench_attention.csv/.png/.svg (default: results/, git-ignored)")
    parser.add_argument("--publish", action="store_true",
                        help="the committed run (make bench): default settings with --long, written to figures/")
    # internal: one memory case in a fresh process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", default="prefill", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="sdpa", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=1024, help=argparse.SUPPRESS)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parsed options; ``args.out`` is the output folder: results/ unless --out or --publish says otherwise."""
    parser = build_parser()
    args = parser.parse_args(argv)
    choose_output(parser, args, PUBLISHED_SETTINGS)
    if args.publish:
        args.long = True
    if args.quick:
        args.lengths, args.decode_caches, args.repeats, args.decode_repeats = [1024, 2048], [4096], 2, 10
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    if args.plot_only:
        plot_figure(output_csv(args))
        return
    torch.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_name()}; torch {torch.__version__}, {args.threads} threads, batch 1, {args.heads} heads, head_dim {args.head_dim}, "
        f"float32, SelfExtend g={args.group} w={args.window}; time = best of {args.repeats} (prefill) / "
        f"{args.decode_repeats} (decode), peak = rise of peak RSS in a fresh process"
    )
    print(HEADER)
    rows = []
    for length in args.lengths:
        rows += run_case("prefill", length, args)
    if args.long:
        rows += run_case("prefill", 32768, args, methods=("sdpa", "naive", "fast"))
    for cache in args.decode_caches:
        rows += run_case("decode", cache, args)
    write_csv(rows, output_csv(args), FIELDS)
    print(f"wrote {output_csv(args)}")
    if not args.no_plot:
        plot_figure(output_csv(args))


def output_csv(args) -> Path:
    """bench_attention.csv in the output folder chosen by parse_args."""
    return args.out / "bench_attention.csv"


def plot_figure(path: Path) -> None:
    """Draw <csv stem>.png/.svg beside the CSV (so the notebook's figure is the same picture)."""
    from selfextend.viz import plot_attention_benchmark, read_benchmark_csv

    plot_from_csv(path, plot_attention_benchmark, read_benchmark_csv)


if __name__ == "__main__":
    main()
