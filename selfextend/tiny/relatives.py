"""SelfExtend's relatives on the tiny LM: bits per byte and passkey accuracy by length, one command.

    python -m selfextend.tiny.relatives                 # writes experiments/tiny_lm_relatives.json
    python -m selfextend.tiny.relatives --out results/x.json --count 2 --trials 1   # a quick look

Every method of ``selfextend.methods.recommended(L_train)`` (published defaults scaled to
L_train = 128) plus plain RoPE, on the committed checkpoints: held-out bits per byte at 1x-16x
L_train (``count`` windows of 16 L_train bytes; causal attention and length-free position maps make
one pass give every shorter prefix) and passkey accuracy at 1x-16x (``trials`` keys per depth).
The JSON (settings, versions, timings, numbers rounded to 4 decimals) is written atomically: a
temporary file, then a rename. Notebook 10 plots from it, never from live model numbers.
About 10 minutes on 2 cores (shared).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from .. import __version__
from ..methods import recommended
from . import evaluate
from .._files import write_json_atomic
from .model import PLAIN, checkpoints_dir, load_checkpoint, relative

DEPTHS = [0.0, 0.25, 0.5, 0.75, 1.0]
MULTIPLES = [1, 2, 4, 8, 16]


def run(count: int = 4, trials: int = 2, seed: int = 0, threads: int = 2, progress: bool = True) -> dict:
    """Every method's bits per byte and passkey accuracy by length, as a JSON-ready dict."""
    from tqdm import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    base, base_card = load_checkpoint(checkpoints_dir() / "tiny_lm_base.pt")
    passkey_model, _ = load_checkpoint(checkpoints_dir() / "tiny_lm_passkey.pt")
    L = base.config.train_length
    lengths = [L * k for k in MULTIPLES]
    methods = [PLAIN] + [relative(m) for m in recommended(L)]
    rows, started = [], time.perf_counter()
    bar = tqdm(methods, desc="methods", disable=not progress, file=sys.stderr)
    for method in bar:
        bar.set_postfix_str(method.label)
        t0 = time.perf_counter()
        bits = evaluate.position_bits(base, lengths[-1], method, count=count, seed=seed, batch_size=4)
        by_length = evaluate.bits_at_lengths(bits, lengths)
        t1 = time.perf_counter()
        accuracy = evaluate.passkey_accuracy(passkey_model, lengths, DEPTHS, method, trials=trials, seed=seed)
        t2 = time.perf_counter()
        pm = method.position_map
        rows.append({
            "label": method.label,
            "name": "plain RoPE" if pm is None else pm.name,
            "parameters": {} if pm is None else {k: v for k, v in vars(pm).items()},
            "largest_relative_position": {str(n): (n - 1 if pm is None else round(pm.largest_relative_position(n), 4))
                                          for n in lengths},
            "bits_per_byte": {str(n): round(b, 4) for n, b in by_length.items()},
            "passkey_accuracy": {str(n): round(a, 4) for n, a in zip(lengths, accuracy.mean(0).tolist())},
            "passkey_by_depth": [[round(a, 4) for a in row] for row in accuracy.tolist()],
            "seconds": {"bits": round(t1 - t0, 1), "passkey": round(t2 - t1, 1)},
        })
    return {
        "experiment": "SelfExtend's relatives on the tiny byte-level LM (notebook 10)",
        "settings": {
            "train_length": L, "lengths": lengths, "bits_windows": count, "bits_seed": seed,
            "passkey_depths": DEPTHS, "passkey_trials_per_depth": trials, "passkey_seed": seed,
            "threads": threads, "checkpoints": ["tiny_lm_base.pt", "tiny_lm_passkey.pt"],
            "base_held_out_bits_at_L_train": base_card.get("held_out_bits_per_byte_at_L_train"),
            "parameters": "published defaults scaled to L_train (selfextend.methods.recommended)",
        },
        "versions": {"selfextend": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "seconds_total": round(time.perf_counter() - started, 1),
        "methods": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/tiny_lm_relatives.json"))
    parser.add_argument("--count", type=int, default=4, help="held-out windows of 16 L_train bytes")
    parser.add_argument("--trials", type=int, default=2, help="passkey keys per (length, depth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for name in ("count", "trials", "threads"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be a positive integer, got {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.seed < 0:
        print(f"error: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    data = run(args.count, args.trials, args.seed, args.threads)
    write_json_atomic(data, args.out)
    print(f"wrote {args.out} ({data['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
