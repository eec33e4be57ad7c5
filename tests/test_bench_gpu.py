"""benchmarks/bench_gpu.py: its exactness check and table run on the CPU route (CI has no GPU), so the
script cannot rot; without a GPU, --device cuda and --publish stop with one line and exit code 2."""
from __future__ import annotations

import csv

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_gpu")


def test_cpu_smoke_run_checks_and_times(bench, tmp_path, capsys):
    code = bench.main(["--device", "cpu", "--lengths", "256", "512", "--check-length", "300", "--repeats", "1",
                       "--dtypes", "fp32", "bf16", "--out", str(tmp_path)])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "bench_gpu.csv")))
    checks = [r for r in rows if r["case"] == "check"]
    assert [r["dtype"] for r in checks] == ["fp32", "bf16"]
    assert float(checks[0]["max_abs_error"]) < 1e-5  # the CPU route equals the reference in fp32
    prefill = [r for r in rows if r["case"] == "prefill"]
    assert {(r["length"], r["dtype"], r["method"]) for r in prefill} == {
        (n, d, m) for n in ("256", "512") for d in ("fp32", "bf16") for m in ("sdpa", "fast", "reference")}
    assert all(float(r["time_vs_sdpa"]) > 0 for r in prefill)
    assert "max |fast - reference|" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("argv", [[], ["--publish"], ["--quick"]])
def test_no_gpu_is_one_line_exit_2(bench, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "CUDA" in err


@pytest.mark.parametrize("argv", [["--publish", "--quick"], ["--publish", "--window", "512"],
                                  ["--publish", "--device", "cpu"], ["--out", "figures"]])
def test_only_the_full_run_writes_figures(bench, capsys, argv):
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    assert stop.value.code == 2 and "error:" in capsys.readouterr().err
