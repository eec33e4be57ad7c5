"""Pictures of the fast SelfExtend kernel: its schedule of blocks, and the attention benchmark."""
from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon

from ..fast_attention import GROUPED, MIXED, NEIGHBOR, band_plan, plan

METHOD_STYLE = {
    "sdpa": ("torch SDPA causal (floor)", "0.45", "o"),
    "naive": ("naive merge (reference)", "tab:red", "s"),
    "fast": ("fast exact SelfExtend", "tab:blue", "^"),
}
# Cell codes of the schedule pictures.
_NOT_COMPUTED, _GROUPED, _NEIGHBOR, _MIXED, _MASKED = range(5)
_SCHEDULE_COLORS = ["white", "tab:orange", "tab:green", "tab:purple", "0.85"]
_SCHEDULE_LABELS = ["not computed", "grouped q/k only", "neighbor q/k only", "mixed: both computed", "computed, masked"]


def segment_picture(nq: int, nk: int, window: int, query_chunk: int) -> np.ndarray:
    """[nq, nk] cell codes of the general schedule (``fast_attention.plan``) under the causal mask."""
    positions = torch.arange(nk)
    causal = np.tril(np.ones((nq, nk), dtype=bool), nk - nq)
    codes = np.full((nq, nk), _NOT_COMPUTED)
    kind_code = {GROUPED: _GROUPED, NEIGHBOR: _NEIGHBOR, MIXED: _MIXED}
    for start, end, segments in plan(positions[nk - nq :], positions, window, query_chunk):
        for seg in segments:
            block = codes[start:end, seg.start : seg.end]
            block[:] = kind_code[seg.kind]
            block[~causal[start:end, seg.start : seg.end]] = _MASKED
    return codes


def band_picture(nq: int, nk: int, window: int, block_rows: int):
    """([nq, nk] cell codes, piece rectangles) of the banded schedule (``fast_attention.band_plan``)."""
    distance = np.arange(nk - nq, nk)[:, None] - np.arange(nk)[None, :]
    codes = np.where(distance < 0, _NOT_COMPUTED, np.where(distance >= window, _GROUPED, _NEIGHBOR))
    return codes, [piece for block in band_plan(nq, nk, window, block_rows) for piece in block]


def _piece_rows(piece, nq: int, nk: int, window: int) -> list[tuple[int, int, int]]:
    """(row, first key, end key) of the cells one banded piece really uses."""
    rows = []
    for r in range(piece.r0, piece.r1):
        lo, hi = piece.k0, piece.k1
        if piece.shape == "causal":
            hi = min(hi, piece.k0 + (r - piece.r0) + 1)
        elif piece.shape == "band":  # row r's whole neighbor band t - w + 1 .. t
            t = nk - nq + r
            lo, hi = max(lo, t - window + 1), t + 1
        if lo < hi:
            rows.append((r, lo, hi))
    return rows


def _staircase(rows: list[tuple[int, int, int]]) -> list[tuple[float, float]]:
    """Outline of cells given row by row: down the right edges, back up the left edges."""
    right = [(hi - 0.5, y) for r, _, hi in rows for y in (r - 0.5, r + 0.5)]
    left = [(lo - 0.5, y) for r, lo, _ in reversed(rows) for y in (r + 0.5, r - 0.5)]
    return right + left


def _schedule_axes(ax, codes, title):
    ax.imshow(codes, cmap=ListedColormap(_SCHEDULE_COLORS), vmin=-0.5, vmax=len(_SCHEDULE_COLORS) - 0.5,
              interpolation="nearest", aspect="equal")
    ax.set_title(title)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")


def plot_attention_schedule(nq: int, nk: int, window: int, query_chunk: int, block_rows: int | None = None) -> Figure:
    """Two panels: the general per-chunk schedule (grouped-only, neighbor-only, mixed segments) and the
    banded schedule (blocks of rows: grouped full / causal pieces and the neighbor band), default causal mask."""
    block_rows = block_rows or max(1, window)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 5.2))
    _schedule_axes(left, segment_picture(nq, nk, window, query_chunk),
                   f"general schedule: chunks of {query_chunk} queries")
    for row in range(query_chunk, nq, query_chunk):
        left.axhline(row - 0.5, color="black", linewidth=0.8)
    codes, pieces = band_picture(nq, nk, window, block_rows)
    _schedule_axes(right, codes, f"banded schedule: {len(pieces)} fused calls")
    for piece in pieces:
        rows = _piece_rows(piece, nq, nk, window)
        right.add_patch(Polygon(_staircase(rows), closed=True, fill=False, edgecolor="black", linewidth=1.0))
        if sum(hi - lo for _, lo, hi in rows) >= 0.01 * nq * nk:
            middle = rows[len(rows) // 2]
            right.text((middle[1] + middle[2] - 1) / 2, middle[0], piece.shape, ha="center", va="center", fontsize=7)
    handles = [Patch(facecolor=c, edgecolor="0.3", label=lab) for c, lab in zip(_SCHEDULE_COLORS, _SCHEDULE_LABELS)]
    fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False, fontsize=8)
    fig.suptitle(f"Fast exact SelfExtend: which q/k each block uses ({nq} queries, {nk} keys, window {window})")
    fig.subplots_adjust(bottom=0.16)
    return fig


def read_benchmark_csv(path: str | Path) -> list[dict]:
    """Rows of figures/bench_attention.csv with numbers as floats (None where empty)."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            out = dict(row)
            for key in ("length", "time_ms", "time_vs_sdpa", "peak_mib", "memory_vs_sdpa"):
                out[key] = float(row[key]) if row.get(key) not in (None, "") else None
            out["length"] = int(out["length"])
            rows.append(out)
    return rows


def _series(rows: Iterable[Mapping], case: str, method: str, key: str):
    points = [(int(r["length"]), float(r[key])) for r in rows
              if r["case"] == case and r["method"] == method and r.get(key) not in (None, "")]
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]


def _length_panels(rows: list[Mapping], panels, style: Mapping, skipped_method: str, skipped_label: str,
                   title: str) -> Figure:
    """Three panels against length (log 2 x axis, one line per method of ``style``).

    ``panels``: (case, key, y label, x label, y scale) each; a linear y axis starts at 0. The lengths
    where ``skipped_method`` has a note are listed in the first panel.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (case, key, label, xlabel, yscale) in zip(axes, panels):
        for method, (name, color, marker) in style.items():
            xs, ys = _series(rows, case, method, key)
            if xs:
                ax.plot(xs, ys, marker=marker, color=color, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale(yscale)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        lengths = sorted({int(r["length"]) for r in rows if r["case"] == case})
        if lengths:
            ax.set_xticks(lengths, [f"{n / 1024:g}k" for n in lengths])
            ax.minorticks_off()
        ax.grid(True, which="major", alpha=0.3)
        if yscale == "linear":
            ax.set_ylim(bottom=0)
    skipped = sorted({int(r["length"]) for r in rows if r["method"] == skipped_method and r.get("note")})
    if skipped:
        axes[0].text(0.02, 0.98, skipped_label + ", ".join(f"{n / 1024:g}k" for n in skipped) +
                     "\n(too much memory)", transform=axes[0].transAxes, va="top", fontsize=7)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention_benchmark(rows: Iterable[Mapping]) -> Figure:
    """Prefill time, prefill peak memory and decode-step time against length, one line per method."""
    panels = [("prefill", "time_ms", "prefill time (ms)", "sequence length L", "log"),
              ("prefill", "peak_mib", "prefill peak memory rise (MiB)", "sequence length L", "log"),
              ("decode", "time_ms", "decode step time (ms)", "cache length", "log")]
    return _length_panels(list(rows), panels, METHOD_STYLE, "naive", "naive skipped at L = ",
                          "SelfExtend attention on CPU: batch 1, 8 heads, head_dim 64, float32")


REAL_MODEL_STYLE = {
    "plain": ("plain model (sdpa)", "0.45", "o"),
    "reference": ("SelfExtend, naive merge (reference)", "tab:red", "s"),
    "fast": ("SelfExtend, fast exact kernel", "tab:blue", "^"),
}
_REAL_MODEL_NUMBERS = ("time_s", "tokens_per_s", "vs_plain", "peak_rss_mib", "peak_vs_plain", "rise_mib",
                       "rise_vs_plain")


def read_real_model_csv(path: str | Path) -> list[dict]:
    """Rows of bench_real_model.csv with numbers as floats (None where empty) and length as int."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            out = dict(row)
            for key in _REAL_MODEL_NUMBERS:
                out[key] = float(row[key]) if row.get(key) not in (None, "") else None
            out["length"] = int(row["length"])
            rows.append(out)
    return rows


def plot_real_model_benchmark(rows: Iterable[Mapping], title: str = "SelfExtend on a real model (CPU)") -> Figure:
    """Prefill time, peak RSS and greedy decode tokens/s against length: plain, fast and reference SelfExtend."""
    panels = [("prefill", "time_s", "prefill time (s)", "prompt length (tokens)", "log"),
              ("prefill", "peak_rss_mib", "prefill peak RSS, model included (MiB)", "prompt length (tokens)",
               "linear"),
              ("decode", "tokens_per_s", "greedy decode (tokens/s)", "context length (tokens)", "linear")]
    return _length_panels(list(rows), panels, REAL_MODEL_STYLE, "reference", "reference skipped at ", title)
