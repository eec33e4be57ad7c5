"""What one machine holds: k participants without a browser run the 90-minute track through a real room.

    sudo make hub-load-test                                   # k = 5, 10, 20, 30 into experiments/hub_load_test.json
    sudo .venv/bin/python tools/hub/loadtest.py --k 2 --notebooks 01 --max-cells 4 --think 1 --out /tmp/smoke.json

For each k: a room (serve.py, as harness.py starts it: random passwords, temporary state, limits as a teacher's
room) holds k participants. They sign in through the hub's REST API and start their servers all at once (the
teacher says "sign in now"), then each walks the track: for every notebook (01, 02, 03, 05) a kernel from their
own copy, every code cell in order through the kernel's websocket, with a think time drawn uniformly from
0.5-1.5 x --think seconds before each cell. With --kernels kept, every notebook's kernel stays running until the
end of the track, as in a room where nobody shuts a notebook down (JupyterLab's default); with --kernels one, a
participant shuts a notebook's kernel down before opening the next, as serve.py's --cull-kernels does for a
kernel left idle. Recorded: sign-in and spawn seconds, each cell's latency (request to idle),
errors and kernels that died, and memory: each participant's cgroup peak (memory.max_usage_in_bytes, page cache
included) and anonymous memory (memory.stat total_rss, sampled every 2 s), the room's peak, and the machine's
peak use above its baseline. --think 10 (default) is a compressed room (a real one spends about 45 s per cell),
so the latencies are an upper bound for the same k.

The JSON is rewritten after every k (settings, versions, machine, timings, peaks), and its figure with it
(selfextend.viz.plot_hub_load); a rerun with the same settings computes only the missing k, other settings need
--fresh. SIGTERM or Ctrl-C stops it cleanly: the k in progress is dropped, the room is closed (accounts, homes,
cgroups and state removed) and the finished k stay in the JSON. Needs root and the cgroup v1 memory controller.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
from harness import Hub  # noqa: E402
from limits import Cgroup  # noqa: E402
from room import ROOT, OneLineParser  # noqa: E402

from selfextend._files import write_json_atomic  # noqa: E402

DEFAULT_OUT = ROOT / "experiments" / "hub_load_test.json"

TRACK = ["01", "02", "03", "05"]  # the 90-minute track (notebooks/workshop_schedule.json)
MIB = 1 << 20
KERNELS = {"kept": "kept running until the end of the track",
           "one": "shut down at the end of each notebook, before the next opens"}
STOP = threading.Event()  # set by SIGTERM / SIGINT: participants stop before their next cell
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP too: started with nohup or in background


class Stopped(Exception):
    """The load test was asked to stop (SIGTERM or SIGINT)."""


def stop_on_signal(signum: int, frame) -> None:
    """Signal handler: tell the participants to stop and unwind the main thread (which closes the room)."""
    STOP.set()
    raise Stopped(signal.Signals(signum).name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The load test's options."""
    parser = OneLineParser(prog="loadtest.py", description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20, 30], help="room sizes (default 5 10 20 30)")
    parser.add_argument("--notebooks", nargs="+", default=TRACK, help="notebook numbers (default: 01 02 03 05)")
    parser.add_argument("--think", type=float, default=10.0, help="mean seconds before each cell (default 10)")
    parser.add_argument("--max-cells", type=int, help="at most this many code cells per notebook (default: all)")
    parser.add_argument("--memory-limit", default="2G", help="per participant, as serve.py (default 2G)")
    parser.add_argument("--threads", type=int, default=1, help="threads per kernel, as serve.py (default 1)")
    parser.add_argument("--kernels", choices=["kept", "one"], default="one",
                        help="one: each notebook's kernel is shut down before the next opens (default); kept: all "
                        "stay running to the end")
    parser.add_argument("--cell-timeout", type=float, default=7200.0,
                        help="seconds a cell may take before it counts as timed out (default 7200: the 30-participant "
                        "room takes about 30 minutes for notebook 05's first evaluation cell on 2 cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the think times")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results JSON (default experiments/hub_load_test.json, its figure in figures/; "
                             "elsewhere the figure goes beside the JSON)")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    options = parser.parse_args(argv)
    if any(k < 1 for k in options.k) or len(set(options.k)) != len(options.k):
        parser.error("--k takes distinct room sizes of at least 1")
    if options.think < 0 or (options.max_cells is not None and options.max_cells < 1) or options.cell_timeout <= 0:
        parser.error("--think must be >= 0, --max-cells >= 1 and --cell-timeout > 0")
    for number in options.notebooks:
        if len(list((ROOT / "notebooks").glob(f"{number}_*.ipynb"))) != 1:
            parser.error(f"no learner notebook numbered {number!r} in notebooks/")
    return options


def settings_of(options: argparse.Namespace) -> dict:
    """What makes two runs comparable (the k list aside)."""
    return {"notebooks": options.notebooks, "think_seconds": options.think, "max_cells": options.max_cells,
            "memory_limit": options.memory_limit, "threads_per_kernel": options.threads, "seed": options.seed,
            "cell_timeout_seconds": options.cell_timeout,
            "kernels": KERNELS[options.kernels], "think_draw": "uniform 0.5-1.5 x think_seconds"}


def versions() -> dict:
    """Versions of what the room runs."""
    found = {"python": platform.python_version()}
    for package in ("jupyterhub", "jupyterhub-idle-culler", "jupyter_server", "jupyterlab", "ipykernel", "torch"):
        found[package] = version(package)
    proxy = HERE / "node_modules" / "configurable-http-proxy" / "package.json"
    found["configurable-http-proxy"] = json.loads(proxy.read_text())["version"] if proxy.exists() else None
    return found


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, rest = line.split(":", 1)
        values[name] = int(rest.split()[0]) * 1024
    return values


def machine() -> dict:
    """The machine the room ran on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": round(meminfo()["MemTotal"] / 2**30, 1),
            "kernel": platform.release()}


def summary(values: list[float], digits: int = 2) -> dict:
    """count, p50, p95, max (nearest-rank percentiles) of VALUES."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def rank(p: float) -> float:
        """The nearest-rank P-th percentile."""
        return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]

    return {"count": len(ordered), "p50": round(rank(50), digits), "p95": round(rank(95), digits),
            "max": round(ordered[-1], digits), "mean": round(statistics.fmean(ordered), digits)}


class Sampler(threading.Thread):
    """Every 2 s: each participant's cgroup (usage, anonymous memory) and the machine's memory in use."""

    def __init__(self, groups: dict[str, Cgroup]):
        super().__init__(daemon=True)
        self.groups, self.stop, self.rss_peak = groups, threading.Event(), {name: 0 for name in groups}
        self.room_peak, self.baseline = 0, self.used()
        self.system_peak = self.baseline

    @staticmethod
    def used() -> int:
        """Bytes the machine has in use (MemTotal - MemAvailable)."""
        info = meminfo()
        return info["MemTotal"] - info["MemAvailable"]

    def run(self) -> None:
        """Sample until stop is set."""
        while not self.stop.wait(2.0):
            room = 0
            for name, group in self.groups.items():
                room += group.read("memory.usage_in_bytes")
                try:
                    stat = dict(line.split() for line in (group.path / "memory.stat").read_text().splitlines())
                    self.rss_peak[name] = max(self.rss_peak[name], int(stat.get("total_rss", 0)))
                except (OSError, ValueError):
                    pass
            self.room_peak = max(self.room_peak, room)
            self.system_peak = max(self.system_peak, self.used())


def walk(hub: Hub, name: str, options: argparse.Namespace, bar: tqdm) -> dict:
    """One participant: sign in, start the server, run the track's cells with think time; their timings.

    A failure (a refused sign-in, a server that does not start) is recorded as a problem, not raised: the other
    participants of the room go on."""
    rng = random.Random(f"{options.seed}-{name}")
    person = hub.participant(name)
    record = {"name": name, "sign_in": None, "spawn": None, "cells": [], "problems": [], "peak": 0}
    cells, problems = record["cells"], record["problems"]
    try:
        start = time.perf_counter()
        person.sign_in()
        record["sign_in"] = time.perf_counter() - start
        record["spawn"] = person.start_server()
        with ExitStack() as kernels:
            for number in options.notebooks:
                path = f"notebooks/{next((ROOT / 'notebooks').glob(f'{number}_*.ipynb')).name}"
                code = [cell["source"] for cell in person.contents(path).json()["content"]["cells"]
                        if cell["cell_type"] == "code"][:options.max_cells]
                started = time.perf_counter()
                kernel = kernels.enter_context(person.kernel(path))
                cells.append({"notebook": number, "cell": "kernel start",
                              "seconds": round(time.perf_counter() - started, 3), "status": "ok"})
                for index, source in enumerate(code):
                    if STOP.wait(options.think * rng.uniform(0.5, 1.5)):
                        raise Stopped("stopped")
                    result = kernel.execute(source, timeout=options.cell_timeout)
                    cells.append({"notebook": number, "cell": index, "seconds": round(result.seconds, 3),
                                  "status": result.status})
                    bar.update(1)
                    if result.status != "ok":
                        problems.append(f"{name} {number} cell {index}: {result.status} {result.error}"[:300])
                    if result.status in ("died", "timeout"):  # the rest of this notebook cannot run
                        bar.update(len(code) - index - 1)
                        break
                if options.kernels == "one":  # File > Close and Shut Down Notebook
                    kernels.pop_all().close()
        record["peak"] = Cgroup.for_user(hub.prefix + name).read("memory.max_usage_in_bytes")  # before the stop
    except Exception as error:  # noqa: BLE001 (one participant's failure is a result, not the end of the run)
        problems.append(f"{name}: {type(error).__name__}: {error}"[:300])
        problems.extend(f"{name}: hub log: {line}" for line in hub.log_about(name))  # the log goes with the room
        record["failed"] = True
    try:
        person.stop_server()
    except Exception as error:  # noqa: BLE001
        problems.append(f"{name}: stopping the server: {error}"[:300])
    return record


def run_room(hub: Hub, k: int, options: argparse.Namespace) -> dict:
    """k participants through the track at once; the summary of what happened."""
    names = hub.names[:k]
    groups = {name: Cgroup.for_user(hub.prefix + name) for name in names}
    cells_each = sum(min(len([c for c in json.loads(next((ROOT / "notebooks").glob(f"{n}_*.ipynb")).read_text())
                              ["cells"] if c["cell_type"] == "code"]), options.max_cells or 10**9)
                     for n in options.notebooks)
    sampler = Sampler(groups)
    sampler.start()
    started, wall = datetime.now(timezone.utc), time.perf_counter()
    with tqdm(total=k * cells_each, desc=f"k={k}", unit="cell", dynamic_ncols=True) as bar:
        pool = ThreadPoolExecutor(max_workers=k)
        try:
            people = list(pool.map(lambda name: walk(hub, name, options, bar), names))
        finally:  # on a signal, do not wait for cells in flight: closing the room ends them
            pool.shutdown(wait=not STOP.is_set(), cancel_futures=True)
            sampler.stop.set()
            sampler.join()
    peaks = [p["peak"] for p in people if p["peak"]]
    cells = [c for p in people for c in p["cells"] if c["cell"] != "kernel start"]
    by_notebook = {n: summary([c["seconds"] for c in cells if c["notebook"] == n]) for n in options.notebooks}
    problems = [line for p in people for line in p["problems"]]
    return {
        "k": k, "started": started.isoformat(timespec="seconds"), "wall_seconds": round(time.perf_counter() - wall, 1),
        "participants_failed": sum(p.get("failed", False) for p in people),
        "sign_in_seconds": summary([p["sign_in"] for p in people if p["sign_in"] is not None]),
        "spawn_seconds": {**summary([p["spawn"] for p in people if p["spawn"] is not None]),
                          "values": [round(p["spawn"], 2) for p in people if p["spawn"] is not None]},
        "kernel_start_seconds": summary([c["seconds"] for p in people for c in p["cells"]
                                         if c["cell"] == "kernel start"]),
        "cell_seconds": {**summary([c["seconds"] for c in cells]), "by_notebook": by_notebook},
        "cells_ok": sum(c["status"] == "ok" for c in cells), "cells_error": sum(c["status"] == "error" for c in cells),
        "kernels_died": sum(c["status"] == "died" for c in cells),
        "cells_timeout": sum(c["status"] == "timeout" for c in cells), "problems": problems[:20],
        "memory_mib": {
            "per_participant_peak": summary([p / MIB for p in peaks], 0),
            "per_participant_anonymous_peak": summary([v / MIB for v in sampler.rss_peak.values()], 0),
            "room_peak": round(sampler.room_peak / MIB), "machine_baseline": round(sampler.baseline / MIB),
            "machine_peak_above_baseline": round((sampler.system_peak - sampler.baseline) / MIB),
        },
    }


def save_plot(results: dict, out: Path) -> list[Path]:
    """The figure of RESULTS: figures/<stem>.{png,svg} for a JSON in experiments/, else beside OUT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selfextend.viz import plot_hub_load, save_figure, style

    with style():
        figure = plot_hub_load(results)
        directory = ROOT / "figures" if out.resolve().parent == DEFAULT_OUT.parent else out.parent
        paths = save_figure(figure, out.stem, directory)
    plt.close(figure)
    return paths


def load_results(path: Path, settings: dict, fresh: bool) -> dict:
    """Earlier results with the same settings (to resume), else a new record; ValueError on a mismatch."""
    if path.exists() and not fresh:
        earlier = json.loads(path.read_text())
        if earlier.get("settings") != settings:
            raise ValueError(f"{path} holds a run with other settings ({earlier.get('settings')}); "
                             "use --fresh to replace it or another --out")
        return earlier
    return {"settings": settings, "runs": {}}


def main(argv: list[str] | None = None) -> int:
    """Run every k not yet in --out, writing the JSON after each."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("loadtest.py: run me as root (the room creates a Unix user per participant)", file=sys.stderr)
        return 2
    try:
        results = load_results(options.out, settings_of(options), options.fresh)
    except ValueError as error:
        print(f"loadtest.py: {error}", file=sys.stderr)
        return 2
    todo = [k for k in options.k if str(k) not in results["runs"]]
    if not todo:
        print(f"Every k of {options.k} is in {options.out} already (--fresh to measure again).")
        return 0
    hub = Hub([f"load{i:02d}" for i in range(1, max(todo) + 1)], memory_limit=options.memory_limit,
              threads=options.threads)
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop_on_signal)
    try:
        hub.open_the_way()
        seconds = hub.start(cull_idle="0", extra=("--cull-kernels", "0"))  # kernels live as --kernels says
        print(f"room up in {seconds:.1f} s; warming the page cache with one participant", flush=True)
        warm = hub.participant(hub.names[0])
        warm.sign_in()
        warm.start_server()
        with warm.kernel("notebooks/warmup.ipynb") as kernel:
            kernel.execute("import torch, matplotlib.pyplot, selfextend, selfextend.viz, selfextend.tiny")
        warm.stop_server()
        for k in todo:
            run = run_room(hub, k, options)
            results.update(versions=versions(), machine=machine())
            results["runs"][str(k)] = run
            results["runs"] = dict(sorted(results["runs"].items(), key=lambda item: int(item[0])))
            results["complete"] = all(str(k) in results["runs"] for k in options.k)
            write_json_atomic(results, options.out)
            save_plot(results, options.out)
            cell, memory = run["cell_seconds"], run["memory_mib"]
            print(f"k={k}: spawn p50 {run['spawn_seconds'].get('p50')} s, cells p50 {cell.get('p50')} s "
                  f"p95 {cell.get('p95')} s, peak {memory['per_participant_peak'].get('max')} MiB per participant, "
                  f"{run['kernels_died']} kernels died, {run['cells_error']} cell errors, "
                  f"{run['participants_failed']} participants failed -> {options.out}", flush=True)
    except Stopped as why:
        kept = ", ".join(results["runs"]) or "none"
        print(f"loadtest.py: stopped by {why}; closing the room (finished k kept in {options.out}: {kept})",
              file=sys.stderr, flush=True)
        return 130
    finally:
        for signum in STOP_SIGNALS:  # closing the room is not interrupted
            signal.signal(signum, signal.SIG_IGN)
        hub.close()
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
