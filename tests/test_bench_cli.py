"""benchmarks/bench_attention.py: where its files go. Quick and exploratory runs write the git-ignored
results/, never the committed figures/ (only --publish, i.e. `make bench`, does). The full benchmark
takes minutes and is not run here; its --quick mode (about a minute) is, so the script cannot rot."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (ROOT / "figures").resolve()
RESULTS = (ROOT / "results").resolve()


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_attention")


@pytest.mark.parametrize("argv", [[], ["--quick"], ["--long"], ["--quick", "--plot-only"], ["--lengths", "512"]])
def test_every_run_but_publish_writes_results(bench, argv):
    args = bench.parse_args(argv)
    assert args.out.resolve() == RESULTS
    assert bench.output_csv(args).resolve() == RESULTS / "bench_attention.csv"


def test_quick_settings(bench):
    args = bench.parse_args(["--quick"])
    assert (args.lengths, args.decode_caches, args.repeats, args.decode_repeats) == ([1024, 2048], [4096], 2, 10)


def test_out_chooses_the_folder(bench, tmp_path):
    args = bench.parse_args(["--quick", "--out", str(tmp_path / "mine")])
    assert bench.output_csv(args) == tmp_path / "mine" / "bench_attention.csv"


def test_publish_is_the_full_long_run_into_figures(bench):
    args = bench.parse_args(["--publish"])
    assert args.out.resolve() == FIGURES and args.long
    assert args.lengths == [1024, 2048, 4096, 8192, 16384] and args.decode_caches == [4096, 16384, 65536]
    assert bench.parse_args(["--publish", "--plot-only"]).out.resolve() == FIGURES


@pytest.mark.parametrize("argv", [
    ["--quick", "--out", str(FIGURES)],
    ["--out", str(FIGURES)],
    ["--out", str(FIGURES / "sub")],
    ["--publish", "--quick"],
    ["--publish", "--out", str(RESULTS)],
    ["--publish", "--lengths", "1024"],
    ["--publish", "--threads", "4"],
    ["--publish", "--no-memory"],
])
def test_nothing_else_writes_figures(bench, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        bench.parse_args(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "error:" in err


def test_make_targets():
    """make bench publishes; make bench-quick does not name figures/ or --publish."""
    dry = {target: subprocess.run(["make", "--no-print-directory", "-n", "-W", "requirements.txt", target], cwd=ROOT, capture_output=True,
                                  text=True, check=True).stdout.splitlines()[-1]
           for target in ("bench", "bench-quick")}
    assert "bench_attention.py" in dry["bench"] and "--publish" in dry["bench"]
    assert "--quick" in dry["bench-quick"] and "--publish" not in dry["bench-quick"]
    assert "figures" not in dry["bench-quick"]


def test_quick_run_end_to_end(tmp_path):
    """--quick: prefill 1k and 2k, a 4k decode cache, every method timed and measured, CSV and plot written."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_attention.py"), "--quick",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 threads" in result.stdout and "CPU:" in result.stdout
    rows = list(csv.DictReader(open(tmp_path / "bench_attention.csv", newline="")))
    assert {(r["case"], r["length"], r["method"]) for r in rows} == {
        (case, n, m) for case, n in (("prefill", "1024"), ("prefill", "2048"), ("decode", "4096"))
        for m in ("sdpa", "naive", "fast")}
    for row in rows:
        assert float(row["time_ms"]) > 0 and float(row["peak_mib"]) > 0
        assert float(row["time_vs_sdpa"]) > 0 and float(row["memory_vs_sdpa"]) > 0
    assert (tmp_path / "bench_attention.png").stat().st_size > 0
