"""benchmarks/bench_real_model.py: its --quick mode runs end to end (so the script cannot rot), and only
--publish writes the committed figures/."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_real_model.py"
FIGURES = (ROOT / "figures").resolve()
RESULTS = (ROOT / "results").resolve()


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_real_model")


def test_quick_run_writes_csv_and_figure(tmp_path):
    """The quick mode on the tiny random Llama: every method, prefill and decode rows, ratios to plain."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--model", "tiny", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 threads per process" in result.stdout and "CPU:" in result.stdout
    with open(out / "bench_real_model.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    cases = {(r["case"], int(r["length"]), r["method"]) for r in rows}
    for method in ("plain", "fast", "reference"):
        assert {("prefill", 512, method), ("prefill", 1024, method), ("decode", 1024, method)} <= cases
    for row in rows:
        if row["case"] == "prefill":
            assert float(row["time_s"]) > 0 and float(row["peak_rss_mib"]) > 100  # a model is loaded
            assert float(row["vs_plain"]) > 0 and float(row["peak_vs_plain"]) > 0
        else:
            assert float(row["tokens_per_s"]) > 0 and float(row["vs_plain"]) > 0 and float(row["peak_rss_mib"]) > 100
        if row["method"] == "plain":
            assert float(row["vs_plain"]) == 1.0
    assert (out / "bench_real_model.png").stat().st_size > 0 and (out / "bench_real_model.svg").exists()


@pytest.mark.parametrize("argv", [[], ["--quick"], ["--quick", "--model", "tiny"], ["--lengths", "512"]])
def test_every_run_but_publish_writes_results(bench, argv):
    args = bench.parse_args(argv + ["--model", "tiny"] if "--model" not in argv else argv)
    assert args.out.resolve() == RESULTS
    assert bench.output_csv(args).resolve() == RESULTS / "bench_real_model.csv"


def test_quick_settings(bench):
    args = bench.parse_args(["--quick", "--model", "tiny"])
    assert (args.lengths, args.decode_contexts, args.decode_steps, args.window) == ([512, 1024], [1024], 4, 256)
    assert args.threads == 2 and args.methods == ["plain", "fast", "reference"]


@pytest.mark.parametrize("argv", [
    ["--quick", "--out", str(FIGURES)],
    ["--out", str(FIGURES / "sub")],
    ["--publish", "--quick"],
    ["--publish", "--model", "tiny"],
    ["--publish", "--out", str(RESULTS)],
    ["--publish", "--lengths", "2048"],
    ["--publish", "--threads", "4"],
    ["--threads", "0"],
    ["--lengths", "64"],
    ["--decode-steps", "-1"],
])
def test_nothing_else_writes_figures_and_bad_options_exit_2(bench, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        bench.parse_args(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "error:" in err


def test_targets_are_judged_against_the_issue(bench):
    rows = [
        {"case": "prefill", "length": 8192, "method": "fast", "vs_plain": 1.3, "peak_vs_plain": 1.1},
        {"case": "decode", "length": 8192, "method": "fast", "vs_plain": 0.9},
    ]
    lines = bench.target_lines(rows)
    assert lines == [
        "prefill time at 8192: fast 1.30x plain (target <= 1.25x): MISSED",
        "prefill peak RSS at 8192: fast 1.10x plain (target <= 1.2x): met",
        "decode tokens/s at 8192: fast 0.90x plain (target >= 0.8x): met",
    ]


def test_make_bench_runs_both_benchmarks():
    dry = subprocess.run(["make", "-n", "-W", "requirements.txt", "bench"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "bench_real_model.py --publish" in dry and "bench_attention.py --publish" in dry
