"""The room server's load test (tools/hub/loadtest.py): what one machine holds as participants are added."""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

_SERIES = [("p50", "median", "tab:blue", "o"), ("p95", "95th percentile", "tab:orange", "s"),
           ("max", "slowest", "0.5", "^")]


def plot_hub_load(results: Mapping, title: str | None = None) -> Figure:
    """Spawn time, cell latency and memory per participant against the number of participants k.

    ``results``: the JSON of ``tools/hub/loadtest.py`` (``runs`` keyed by k, each with ``spawn_seconds``,
    ``cell_seconds`` and ``memory_mib``); ``machine`` and ``settings``, when present, go into the title.
    """
    runs = sorted(results["runs"].values(), key=lambda run: run["k"])
    if not runs:
        raise ValueError("the load test has no finished run to plot")
    ks = [run["k"] for run in runs]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for ax, key, label in [(axes[0], "spawn_seconds", "server start (s)"),
                           (axes[1], "cell_seconds", "cell latency, request to idle (s)")]:
        for stat, name, color, marker in _SERIES:
            ax.plot(ks, [run[key].get(stat, np.nan) for run in runs], marker=marker, color=color, label=name)
        ax.set_ylabel(label)
    axes[0].set_ylim(bottom=0)
    axes[1].set_yscale("log")  # most cells take milliseconds, the slowest minutes: one axis shows both
    memory = [run["memory_mib"] for run in runs]
    axes[2].plot(ks, [m["per_participant_peak"].get("p50", np.nan) for m in memory], marker="o", color="tab:blue",
                 label="cgroup peak, median participant")
    axes[2].plot(ks, [m["per_participant_peak"].get("max", np.nan) for m in memory], marker="^", color="0.5",
                 label="cgroup peak, largest participant")
    axes[2].plot(ks, [m["machine_peak_above_baseline"] / run["k"] for m, run in zip(memory, runs)], marker="s",
                 color="tab:green", label="machine's peak above idle / k")
    axes[2].set_ylabel("memory per participant (MiB)")
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("participants k")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    machine, settings = results.get("machine", {}), results.get("settings", {})
    if title is None:
        title = "One machine as a room server"
        if machine:
            title += f": {machine.get('cpus')} CPU cores, {machine.get('memory_gib')} GiB"
        if settings:
            title += (f"; notebooks {', '.join(settings.get('notebooks', []))}, "
                      f"think time {settings.get('think_seconds')} s")
            kernels = settings.get("kernels", "")
            title += ("; every kernel kept running" if kernels.startswith("kept") else
                      "; one kernel at a time" if kernels.startswith("shut down") else "")
    fig.suptitle(title)
    return fig
