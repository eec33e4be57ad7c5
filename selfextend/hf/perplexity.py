"""Perplexity by input length on a real Hugging Face model, with and without SelfExtend (Jin et al., 2024, Sec. 4.1).

    python -m selfextend.hf.perplexity --model PATH --text book.txt --lengths 2048 4096 8192 16384 \\
        --group-size 8 --window 1024 --chunks 4
    python -m selfextend.hf.perplexity --model smollm2 --lengths 4096 16384 --group-size 8 --window 1024

How it is measured (first-N tokens): the text is tokenized once; for each length N the model reads
``--chunks`` consecutive, non-overlapping N-token pieces from the start of the text (chunk 1 =
tokens 0..N-1, chunk 2 = N..2N-1, ...), each in ONE forward pass with no cache, and the perplexity
is exp(mean next-token negative log-likelihood over every predicted token of those pieces). This is
the paper's setting: "the perplexity of the whole sequence" at each length, not a sliding window
with a short context. Beyond the pretrained length the unmodified model's perplexity explodes;
SelfExtend's stays flat. Prints a table and writes ``perplexity.json`` to ``--out``. The unmodified
model runs too unless ``--no-baseline``. ``--text`` is a file, or a held-out play of the Shakespeare
corpus by name (default: hamlet; the split ``selfextend.tiny.corpus`` fixes, never seen by the tiny LM).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from ..tiny.corpus import HELD_OUT_PLAYS, corpus_dir
from .passkey import (CommandParser, add_common_arguments, check_common_arguments, load_model, maybe_selfextend,
                      methods)


@torch.no_grad()
def token_nll(model, ids: torch.Tensor, slice_size: int = 2048, dtype: torch.dtype = torch.float64,
              position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token NLL [n - 1] (float64) of ids [n], one forward; log-softmax in ``dtype``, a slice at a time.

    ``position_ids`` [n] (default 0..n-1) are the RoPE positions the model is given. The attention
    mask is always passed, all ones (one sequence, no padding): without it, transformers (>= 5) reads
    position ids that do not rise by exactly 1 as *packed sequences* and lets each token see only its
    own "sequence" (``masking_utils.find_packed_sequence_indices``); with p // 2 that is the token and
    its neighbour. An explicit mask keeps the ordinary causal mask for every choice of positions.
    """
    device = model.device
    extra = {} if position_ids is None else {"position_ids": position_ids[None].to(device)}
    mask = torch.ones(1, ids.numel(), dtype=torch.long, device=device)  # never "packed": see above
    logits = model(input_ids=ids[None].to(device), attention_mask=mask, use_cache=False, **extra).logits[0]
    return logits_nll(logits, ids, slice_size, dtype)


@torch.no_grad()
def logits_nll(logits: torch.Tensor, ids: torch.Tensor, slice_size: int = 2048,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Next-token NLL [n - 1] (float64) of ids [n] from the logits [n, vocab] of a forward already run."""
    logits = logits[:-1]
    targets = ids[1:].to(logits.device)
    out = torch.empty(targets.numel(), dtype=torch.float64)
    for start in range(0, targets.numel(), slice_size):
        part = torch.log_softmax(logits[start:start + slice_size].to(dtype), dim=-1)
        out[start:start + slice_size] = -part.gather(-1, targets[start:start + slice_size, None])[:, 0].cpu()
    return out


def sequence_nll(model, ids: torch.Tensor, slice_size: int = 2048) -> tuple[float, int]:
    """(sum of next-token NLL, number of predicted tokens) for one sequence ids [1, n], one forward."""
    nll = token_nll(model, ids[0], slice_size, dtype=torch.float32)  # log-softmax in float32, as before
    return nll.sum().item(), nll.numel()


def perplexity_by_length(model, token_ids: torch.Tensor, lengths, chunks: int, group_size: int, window: int,
                         progress=None) -> list[dict]:
    """One row per length: perplexity over ``chunks`` first N-token pieces of ``token_ids`` [n_tokens]."""
    rows = []
    with maybe_selfextend(model, group_size, window):
        for length in lengths:
            available = token_ids.numel() // length
            used = min(chunks, available)
            nll, count = 0.0, 0
            for chunk in range(used):
                piece = token_ids[chunk * length:(chunk + 1) * length][None]
                piece_nll, piece_count = sequence_nll(model, piece)
                nll, count = nll + piece_nll, count + piece_count
                if progress is not None:
                    progress.update(1)
            if progress is not None and used < chunks:
                progress.update(chunks - used)
            rows.append({"length": length, "chunks": used, "tokens": count,
                         "nll": nll / count if count else None,
                         "perplexity": math.exp(nll / count) if count else None})
    return rows


def text_file(text: str) -> Path:
    """``--text``: an existing file, else a held-out play by name (its Project Gutenberg edition)."""
    if Path(text).is_file():
        return Path(text)
    if text in HELD_OUT_PLAYS:
        return corpus_dir() / f"{text}_gut.txt"  # FileNotFoundError with the install line if the corpus is missing
    raise ValueError("no such file" + (f", and not a held-out play ({', '.join(HELD_OUT_PLAYS)})"
                                       if Path(text).suffix == "" else ""))


def format_table(results: dict[str, list[dict]], lengths) -> str:
    labels = list(results)
    header = f"{'length':>8} " + "".join(f"{label:>28}" for label in labels)
    lines = [header]
    for index, length in enumerate(lengths):
        cells = []
        for label in labels:
            ppl = results[label][index]["perplexity"]
            cells.append(f"{'(text too short)' if ppl is None else f'{ppl:.3f}':>28}")
        lines.append(f"{length:>8} " + "".join(cells))
    return "\n".join(lines)


def build_parser() -> CommandParser:
    """The command line of ``python -m selfextend.hf.perplexity``."""
    parser = CommandParser(prog="python -m selfextend.hf.perplexity", description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, baseline=True)
    parser.add_argument("--text", default="hamlet",
                        help=f"a UTF-8 text file (e.g. one PG19 book), or a held-out play of the corpus: "
                             f"{', '.join(HELD_OUT_PLAYS)}")
    parser.add_argument("--lengths", type=int, nargs="+", required=True, help="input lengths in tokens")
    parser.add_argument("--chunks", type=int, default=1,
                        help="consecutive non-overlapping N-token pieces per length (1: the first N tokens)")
    parser.add_argument("--out", default="perplexity_results", help="folder for perplexity.json")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    if args.chunks < 1:
        parser.error(f"--chunks must be >= 1, got {args.chunks}")
    try:
        text_path = text_file(args.text)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--text {args.text}: {error}")

    from tqdm.auto import tqdm

    model, tokenizer = load_model(args.model, args.device, args.dtype, args.no_sliding_window, args.device_map)
    text = text_path.read_text(encoding="utf-8")
    token_ids = torch.tensor(tokenizer(text, add_special_tokens=True)["input_ids"], dtype=torch.long)
    too_long = [n for n in args.lengths if n > token_ids.numel()]
    if too_long:
        print(f"warning: the text has {token_ids.numel()} tokens, fewer than lengths {too_long}", file=sys.stderr)
    runs = methods(args.group_size, args.window, args.baseline)
    results, started = {}, time.time()
    with tqdm(total=len(runs) * len(args.lengths) * args.chunks, desc="perplexity", unit="forward",
              file=sys.stderr) as progress:
        for label, group_size in runs:
            progress.set_postfix_str(label)
            results[label] = perplexity_by_length(model, token_ids, args.lengths, args.chunks, group_size,
                                                  args.window, progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": Path(args.model).name, "text": text_path.name, "text_tokens": token_ids.numel(),
              "method": "first-N tokens: consecutive non-overlapping N-token chunks from the start, one forward each",
              "lengths": args.lengths, "chunks": args.chunks, "group_size": args.group_size, "window": args.window,
              "max_position_embeddings": getattr(model.config, "max_position_embeddings", None),
              "seconds": round(time.time() - started, 1), "results": results}
    (out / "perplexity.json").write_text(json.dumps(report, indent=2))
    print(f"perplexity of the first {args.chunks} x N tokens of {text_path.name} (one forward per chunk)")
    print(format_table(results, args.lengths))
    print(f"wrote {out / 'perplexity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
