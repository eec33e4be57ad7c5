"""SelfExtend's GPU route (selfextend.gpu_attention) against torch SDPA: exactness first, then time and memory.

    python benchmarks/bench_gpu.py                  # CUDA: check at 8k, time 16k, 32k, 64k, 128k in bf16 and fp32
    python benchmarks/bench_gpu.py --quick          # CUDA: check and time at 2k and 4k only
    python benchmarks/bench_gpu.py --device cpu --quick   # no GPU: the same script on the CPU route (a smoke run)
    python benchmarks/bench_gpu.py --publish        # CUDA: the committed run -> figures/bench_gpu.csv

Setting: batch 1, 8 heads, head_dim 64, SelfExtend g = 8, w = 1024 (change with --heads --head-dim
--group --window). Prefill from un-rotated q, k, v; every method pays its own RoPE:
  sdpa       apply_rope to q and k, then torch's scaled_dot_product_attention(is_causal=True)
  fast       self_extend_attention(implementation="fast"): on CUDA the gpu_attention route (torch's
             flash kernel for bf16 / fp16, its memory-efficient kernel for fp32, log-sum-exp merge)
  reference  self_extend_attention(implementation="reference"): two L x L logit matrices, timed where
             it fits in --reference-max-gib
Check: the fast route against the reference computed in float32 from the same inputs, at --check-length;
the maximum absolute error is printed and stored, and the script exits 1 if it exceeds the dtype's
tolerance (fp32 1e-4, bf16 / fp16 2e-2: one rounding of the output in the half type).
Time: CUDA events, the median of --repeats calls after two warm-ups, methods interleaved.
Memory: the rise of torch.cuda.max_memory_allocated over the memory held before the call.
Writes bench_gpu.csv into --out (default results/, git-ignored); only --publish (the default settings on
a CUDA GPU) writes the committed figures/bench_gpu.csv.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from selfextend import apply_rope, self_extend_attention

from common import choose_output, fail, write_csv  # benchmarks/common.py

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
TOLERANCE = {"bf16": 2e-2, "fp16": 2e-2, "fp32": 1e-4}
REFERENCE_MATRICES = 4.5  # the reference holds about this many [heads, L, L] float32 matrices at its peak
FIELDS = ["case", "length", "dtype", "method", "time_ms", "time_vs_sdpa", "peak_mib", "memory_vs_sdpa",
          "max_abs_error", "note"]


def inputs(length: int, args, dtype: torch.dtype):
    """Un-rotated q, k, v [1, heads, length, head_dim] on the device, seeded."""
    generator = torch.Generator().manual_seed(length)
    return [torch.randn(1, args.heads, length, args.head_dim, generator=generator).to(args.device, dtype)
            for _ in range(3)]


def call(method: str, q, k, v, args):
    """One prefill by ``method`` (each applies its own RoPE)."""
    if method == "sdpa":
        positions = torch.arange(q.shape[2], device=q.device)
        return F.scaled_dot_product_attention(apply_rope(q, positions), apply_rope(k, positions), v, is_causal=True)
    return self_extend_attention(q, k, v, args.group, args.window, implementation=method)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    """Milliseconds of one call (CUDA events on the GPU, the wall clock elsewhere)."""
    if device != "cuda":
        start = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - start)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return begin.elapsed_time(end)


def peak_rise_mib(fn, device: str) -> float | None:
    """Rise of the device's peak allocated memory over what was allocated before the call (CUDA only)."""
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn()
    torch.cuda.synchronize()
    rise = (torch.cuda.max_memory_allocated() - before) / 2**20
    del out
    return rise


def check(args, name: str) -> dict:
    """The fast route against the float32 reference on the same (rounded) inputs: max |difference|."""
    q, k, v = inputs(args.check_length, args, DTYPES[name])
    with torch.no_grad():
        fast = call("fast", q, k, v, args).float()
        reference = self_extend_attention(q.float(), k.float(), v.float(), args.group, args.window,
                                          implementation="reference")
    error = float((fast - reference).abs().max())
    row = {"case": "check", "length": args.check_length, "dtype": name, "method": "fast", "max_abs_error": error,
           "note": f"tolerance {TOLERANCE[name]:g}"}
    print(f"check {name:4s} L={args.check_length}: max |fast - reference| = {error:.2e} "
          f"(tolerance {TOLERANCE[name]:g}) {'ok' if error <= TOLERANCE[name] else 'FAILED'}", flush=True)
    return row


def prefill(length: int, name: str, args) -> list[dict]:
    """Time and memory of each method at one length and dtype; ratios to sdpa."""
    q, k, v = inputs(length, args, DTYPES[name])
    methods = ["sdpa", "fast"]
    need = REFERENCE_MATRICES * args.heads * length * length * 4 / 2**30
    note = "" if need <= args.reference_max_gib else f"skipped: needs ~{need:.0f} GiB (> {args.reference_max_gib:g})"
    if not note:
        methods.append("reference")
    times = {m: [] for m in methods}
    with torch.no_grad():
        for _ in range(2):  # warm-up: kernels chosen, allocator primed
            for m in methods:
                call(m, q, k, v, args)
        for _ in range(args.repeats):
            for m in methods:
                times[m].append(timed(lambda m=m: call(m, q, k, v, args), args.device))
        peaks = {m: peak_rise_mib(lambda m=m: call(m, q, k, v, args), args.device) for m in methods}
    rows = []
    for m in ("sdpa", "fast", "reference"):
        row = {"case": "prefill", "length": length, "dtype": name, "method": m}
        if m in methods:
            row.update(time_ms=statistics.median(times[m]), peak_mib=peaks[m])
            row["time_vs_sdpa"] = row["time_ms"] / statistics.median(times["sdpa"])
            if peaks[m] is not None and peaks["sdpa"]:
                row["memory_vs_sdpa"] = peaks[m] / peaks["sdpa"]
        else:
            row["note"] = note
        rows.append(row)
        print(format_row(row), flush=True)
    del q, k, v
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return rows


def format_row(row: dict) -> str:
    def number(key, pattern):
        return pattern.format(row[key]) if row.get(key) is not None else "-"

    return (f"| {row['length']:6d} | {row['dtype']:4s} | {row['method']:9s} | {number('time_ms', '{:9.2f}'):>9s} | "
            f"{number('time_vs_sdpa', '{:5.2f}x'):>6s} | {number('peak_mib', '{:8.0f}'):>8s} | "
            f"{number('memory_vs_sdpa', '{:5.2f}x'):>6s} | {row.get('note', '')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a smoke run of the script")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16384, 32768, 65536, 131072])
    parser.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"], choices=sorted(DTYPES))
    parser.add_argument("--check-length", type=int, default=8192, help="length of the exactness check")
    parser.add_argument("--quick", action="store_true", help="lengths 2k and 4k, check at 2k, 3 repeats")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per method (median kept)")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--group", type=int, default=8, help="SelfExtend group size g")
    parser.add_argument("--window", type=int, default=1024, help="SelfExtend neighbor window w")
    parser.add_argument("--reference-max-gib", type=float, default=40.0, help="time the reference only below this")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (the CPU smoke run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for bench_gpu.csv (default: results/, git-ignored)")
    parser.add_argument("--publish", action="store_true",
                        help="the committed run: default settings on a CUDA GPU, written to figures/bench_gpu.csv")
    parser.set_defaults(plot_only=False)  # (no plot: the README tables read the CSV)
    return parser


# The settings of the committed run: --publish refuses to write figures/ with any other.
PUBLISHED_SETTINGS = ("device", "lengths", "dtypes", "check_length", "repeats", "heads", "head_dim", "group",
                      "window", "reference_max_gib")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    choose_output(parser, args, PUBLISHED_SETTINGS)
    if args.device == "cuda" and not torch.cuda.is_available():
        fail(parser, "--device cuda: no CUDA device here (use --device cpu for a smoke run)")
    if args.quick:
        args.lengths, args.check_length, args.repeats = [2048, 4096], 2048, 3
    for name in ("repeats", "check_length", "heads", "head_dim", "group", "window"):
        if getattr(args, name) < 1:
            fail(parser, f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print(f"device: {where}; torch {torch.__version__}; batch 1, {args.heads} heads, head_dim {args.head_dim}, "
          f"SelfExtend g={args.group} w={args.window}; time = median of {args.repeats}", flush=True)
    rows = [check(args, name) for name in args.dtypes]
    failed = [r["dtype"] for r in rows if r["max_abs_error"] > TOLERANCE[r["dtype"]]]
    print("| length | type | method    |   time ms | vs sdpa | peak MiB | vs sdpa | note\n"
          "|--------|------|-----------|-----------|---------|----------|---------|-----")
    for name in args.dtypes:
        for length in args.lengths:
            rows += prefill(length, name, args)
    for row in rows:
        row["device"] = where
    write_csv(rows, args.out / "bench_gpu.csv", ["device", *FIELDS])
    print(f"wrote {args.out / 'bench_gpu.csv'}")
    if failed:
        print(f"exactness check FAILED for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
