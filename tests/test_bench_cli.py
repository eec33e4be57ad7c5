"""benchmarks/bench_attention.py: where its files go. Quick and exploratory runs write the git-ignored
results/, never the committed figures/ (only --publish, i.e. `make bench`, does). Parsing only: the
benchmark itself takes minutes and is not run here."""
from __future__ import annotations

import subprocess
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
