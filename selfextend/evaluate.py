"""Evaluation of the tiny LM under an attention method: bits per byte, loss by position, passkey accuracy.

Every function takes the ``AttentionMethod`` as an argument, and draws its data from a ``seed``,
so the same call gives the same numbers on every run (with a fixed torch thread count).

    bits per byte = mean next-byte cross-entropy in nats / ln 2;   perplexity = exp(mean nats)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ._checks import check_positive_int
from .data import PASSKEY_DIGITS, eval_windows, load_split, passkey_batch
from .tiny_lm import AttentionMethod, TinyLM

_HELD_OUT: list[torch.Tensor] | None = None


def held_out_files() -> list[torch.Tensor]:
    """The held-out split as byte tensors (read once per process)."""
    global _HELD_OUT
    if _HELD_OUT is None:
        _HELD_OUT = load_split("held_out")
    return _HELD_OUT


@torch.no_grad()
def token_losses(model: TinyLM, windows: torch.Tensor, method: AttentionMethod, batch_size: int = 8) -> torch.Tensor:
    """Next-byte losses in nats, [count, length], for windows long [count, length + 1]."""
    if not isinstance(windows, torch.Tensor) or windows.dim() != 2 or windows.shape[1] < 2:
        raise ValueError(f"windows must be a tensor [count, length + 1] with length >= 1, got {getattr(windows, 'shape', windows)}")
    batch_size = check_positive_int("batch_size", batch_size)
    model.eval()
    losses = []
    for chunk in windows.split(batch_size):
        logits = model(chunk[:, :-1], method)
        loss = F.cross_entropy(logits.float().transpose(1, 2), chunk[:, 1:].long(), reduction="none")
        losses.append(loss)
    return torch.cat(losses)


def held_out_windows(length: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` fixed held-out windows of ``length + 1`` bytes (see ``data.eval_windows``)."""
    return eval_windows(held_out_files(), length, count, seed)


def bits_per_byte(
    model: TinyLM, length: int, method: AttentionMethod, count: int = 8, seed: int = 0, batch_size: int = 8
) -> float:
    """Held-out bits per byte over sequences of ``length`` bytes (mean over every position)."""
    losses = token_losses(model, held_out_windows(length, count, seed), method, batch_size)
    return losses.mean().item() / math.log(2)


def perplexity_from_bits(bits: float) -> float:
    """Per-byte perplexity  2 ** bits  (= exp of the mean loss in nats)."""
    return 2.0**bits


def loss_by_position(
    model: TinyLM, length: int, method: AttentionMethod, count: int = 8, seed: int = 0, batch_size: int = 8
) -> torch.Tensor:
    """Mean held-out loss in bits at each token position, float [length]."""
    losses = token_losses(model, held_out_windows(length, count, seed), method, batch_size)
    return losses.mean(0) / math.log(2)


def smooth(curve: torch.Tensor, bin_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(bin centres, bin means) of a per-position curve, bins of ``bin_size`` positions."""
    bin_size = check_positive_int("bin_size", bin_size)
    n = curve.shape[-1] // bin_size * bin_size
    if n == 0:
        raise ValueError(f"bin_size must be <= the curve length {curve.shape[-1]}, got {bin_size}")
    means = curve[..., :n].reshape(*curve.shape[:-1], -1, bin_size).mean(-1)
    centres = torch.arange(means.shape[-1]) * bin_size + (bin_size - 1) / 2
    return centres, means


def bits_per_byte_table(
    model: TinyLM,
    methods: Sequence[AttentionMethod],
    lengths: Sequence[int],
    count: int = 8,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, dict[int, float]]:
    """{method label: {length: held-out bits per byte}}."""
    return {
        m.label: {n: bits_per_byte(model, n, m, count, seed, batch_size) for n in lengths} for m in methods
    }


@torch.no_grad()
def passkey_accuracy(
    model: TinyLM,
    lengths: Sequence[int],
    depths: Sequence[float],
    method: AttentionMethod,
    trials: int = 5,
    seed: int = 0,
    batch_size: int = 16,
) -> torch.Tensor:
    """Fraction of prompts whose whole passkey is retrieved, float [len(depths), len(lengths)].

    A key counts as retrieved when greedy decoding gives all its digits, i.e. the argmax at each
    answer position is the right digit given the right previous digits (one forward pass).
    """
    trials = check_positive_int("trials", trials)
    if not lengths or not depths:
        raise ValueError("lengths and depths must be non-empty")
    model.eval()
    accuracy = torch.zeros(len(depths), len(lengths))
    for col, length in enumerate(lengths):
        # trial t uses one seed per (length, trial), so each length's keys do not depend on the others
        examples = []
        for t in range(trials):
            examples += passkey_batch(int(length), depths, seed=seed * 1_000_003 + int(length) * 1009 + t)
        tokens = torch.stack([e.tokens for e in examples])
        correct = []
        for chunk in tokens.split(batch_size):
            logits = model(chunk[:, :-1], method)
            predicted = logits[:, -PASSKEY_DIGITS:].argmax(-1)
            correct.append((predicted == chunk[:, -PASSKEY_DIGITS:]).all(-1))
        correct = torch.cat(correct).view(trials, len(depths)).float()
        accuracy[:, col] = correct.mean(0)
    return accuracy
