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

from .._checks import check_positive_int
from .corpus import PASSKEY_DIGITS, eval_windows, load_split, passkey_batch
from .model import AttentionMethod, TinyLM

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
        loss = F.cross_entropy((logits if logits.dtype == torch.float64 else logits.float()).transpose(1, 2), chunk[:, 1:].long(), reduction="none")
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


def position_bits(
    model: TinyLM, length: int, method: AttentionMethod, count: int = 8, seed: int = 0, batch_size: int = 8
) -> torch.Tensor:
    """Held-out loss in bits at every position of every window, float [count, length]."""
    return token_losses(model, held_out_windows(length, count, seed), method, batch_size) / math.log(2)


def bits_at_lengths(bits: torch.Tensor, lengths: Sequence[int]) -> dict[int, float]:
    """{N: mean of the first N positions} from per-position bits [count, n].

    Causal attention makes the loss at position i independent of anything after i, so for a method
    whose positions do not depend on the total length (plain, SelfExtend, PI / NTK / YaRN with a
    fixed scale) one pass at the longest length gives the bits per byte of every shorter prefix.
    """
    result = {}
    for n in lengths:
        n = check_positive_int("length", n)
        if n > bits.shape[-1]:
            raise ValueError(f"length must be <= {bits.shape[-1]} (the evaluated length), got {n}")
        result[n] = bits[..., :n].mean().item()
    return result


def break_position(curve: torch.Tensor, reference: float, tolerance: float, start: int = 0) -> int | None:
    """The first index >= ``start`` where ``curve`` exceeds ``reference + tolerance`` (None if never)."""
    above = torch.nonzero(curve[start:] > reference + tolerance)
    return None if above.numel() == 0 else start + int(above[0, 0])


@torch.no_grad()
def retrieval_scores(model: TinyLM, tokens: torch.Tensor, method: AttentionMethod, keys) -> torch.Tensor:
    """Attention mass of the LAST query on the key positions ``keys``, per layer and head: [layers, heads].

    ``keys`` is one slice for every row, or a list of slices, one per row; the mass is averaged over
    the rows. With ``keys`` = the passkey's digits this finds the heads that retrieve the key.
    """
    keys = [keys] * tokens.shape[0] if isinstance(keys, slice) else list(keys)
    if len(keys) != tokens.shape[0] or not all(isinstance(k, slice) for k in keys):
        raise ValueError(f"keys must be a slice or a list of {tokens.shape[0]} slices (one per row)")
    scores = []
    for layer in range(model.config.n_layers):
        weights = model.attention_weights(tokens, method, layer)  # b h n n
        rows = torch.stack([weights[b, :, -1, k].sum(-1) for b, k in enumerate(keys)])  # b h
        scores.append(rows.mean(0))
    return torch.stack(scores)


def smooth_log(curve: torch.Tensor, per_octave: int = 8, start: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(bin centres, bin means) over bins whose width grows with position (``per_octave`` per doubling).

    The first bin is positions 0 .. start-1; then edges start * 2 ** (k / per_octave), rounded, so a
    log-scale plot gets evenly spaced, similarly smooth points.
    """
    per_octave = check_positive_int("per_octave", per_octave)
    start = check_positive_int("start", start)
    n = curve.shape[-1]
    if start >= n:
        raise ValueError(f"start must be < the curve length {n}, got {start}")
    edges, k = [0, start], 1
    while edges[-1] < n:
        edge = min(n, round(start * 2 ** (k / per_octave)))
        if edge > edges[-1]:
            edges.append(edge)
        k += 1
    means = torch.stack([curve[..., a:b].mean(-1) for a, b in zip(edges[:-1], edges[1:])], -1)
    centres = torch.tensor([(a + b - 1) / 2 for a, b in zip(edges[:-1], edges[1:])])
    return centres, means
