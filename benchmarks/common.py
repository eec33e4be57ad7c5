"""What the benchmark scripts share: where results go, the machine's name, memory readings, CSV, plots.

Run a benchmark as ``python benchmarks/NAME.py``: Python puts this folder on ``sys.path``, so the
scripts import this module as ``common``.
"""
from __future__ import annotations

import argparse
import csv
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

from selfextend.memory import reset_peak_rss, status_mib  # noqa: F401 (status_mib: for the scripts)

REPO = Path(__file__).resolve().parents[1]
SCRATCH_DIR = REPO / "results"  # git-ignored: quick and exploratory runs
PUBLISHED_DIR = REPO / "figures"  # committed: only a --publish run writes here


def cpu_name() -> str:
    """The CPU model name (Linux: from /proc/cpuinfo), to print next to every measurement."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def reset_peak() -> float:
    """Reset the peak-RSS mark (VmHWM) to the current RSS; returns the current RSS in MiB."""
    if not reset_peak_rss():
        raise OSError("cannot reset the peak-RSS mark: /proc/self/clear_refs is not writable")
    return status_mib("VmRSS")


def available_gib() -> float:
    """MemAvailable in GiB (inf where /proc/meminfo has no such line)."""
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def fail(parser: argparse.ArgumentParser, message: str) -> None:
    """One line on stderr, exit code 2."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def choose_output(parser: argparse.ArgumentParser, args: argparse.Namespace, published_settings: Sequence[str],
                  publish_refusal: str | None = None) -> None:
    """Set ``args.out``: figures/ for --publish (default settings only), else --out, else results/.

    ``publish_refusal`` is the message when --publish meets --quick or --out (the caller may check
    more options before calling); --out inside figures/ without --publish is refused.
    """
    if args.publish:
        if args.quick or args.out is not None:
            fail(parser, publish_refusal or "--publish writes figures/ with the full settings: drop --quick and --out")
        defaults = parser.parse_args([])
        changed = [name for name in published_settings if getattr(args, name) != getattr(defaults, name)]
        if changed and not args.plot_only:
            fail(parser, "--publish uses the default settings; not with --" +
                 ", --".join(name.replace("_", "-") for name in changed))
        args.out = PUBLISHED_DIR
    elif args.out is None:
        args.out = SCRATCH_DIR
    elif PUBLISHED_DIR.resolve() in (args.out.resolve(), *args.out.resolve().parents):
        fail(parser, f"--out {args.out} holds the committed benchmark: only --publish (make bench) writes there")


def write_csv(rows: list[dict], path: Path, fields: Sequence[str]) -> None:
    """Rows as CSV (floats to 4 significant digits, missing values empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else (
                f"{row[key]:.4g}" if isinstance(row[key], float) else row[key]) for key in fields})


def plot_from_csv(path: Path, plot: Callable, read: Callable) -> None:
    """Draw <csv stem>.png/.svg beside the CSV with ``plot(read(path))`` (a selfextend.viz function)."""
    import matplotlib

    matplotlib.use("Agg")
    from selfextend.viz import save_figure, style

    with style():
        paths = save_figure(plot(read(path)), path.stem, directory=path.parent)
    print("wrote " + ", ".join(str(p) for p in paths))
