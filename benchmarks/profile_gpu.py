"""Where the GPU route's time goes: torch.profiler's CUDA-kernel table for one prefill (a diagnostic, CUDA only).

    python benchmarks/profile_gpu.py --length 65536 --dtype bf16
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from selfextend import self_extend_attention

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=65536)
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=25, help="kernel rows in the table")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.exit(2, f"{parser.prog}: error: needs a CUDA device\n")
    q, k, v = (torch.randn(1, args.heads, args.length, args.head_dim, device="cuda", dtype=DTYPES[args.dtype])
               for _ in range(3))
    run = lambda: self_extend_attention(q, k, v, args.group, args.window, implementation="fast")  # noqa: E731
    with torch.no_grad():
        run()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            run()
            torch.cuda.synchronize()
    print(f"{args.length} tokens, {args.dtype}:")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.rows, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
