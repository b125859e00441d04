"""What ``suanli bench scaling`` writes: ``scaling.json`` (every figure), ``scaling.md``
(the table and the verdicts) and ``scaling.png`` (speedup and efficiency against the
worker count with the ideal lines, and stacked bars of where the time goes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .plots import save_figure
from .scaling_laws import AmdahlFit
from .time_breakdown import CATEGORIES

COLUMNS = ("mode", "workers", "units", "median s", "spread", "speedup", "efficiency",
           "Karp–Flatt", "GB/s", "units/s", "core-h/GB", "idle", "sched. ms/task", "valid")
COLOURS = {"compute": "#4c72b0", "writing": "#8172b3", "transfer": "#dd8452",
           "serialisation": "#c44e52", "spill": "#937860", "idle": "#d9d9d9"}


def write_report(record: dict[str, Any], folder: Path, plot: bool = True) -> dict[str, Path]:
    """Write the three files into ``folder`` (``plot=False``: all but the plot, which
    does not change); their paths by name."""
    paths = {"json": folder / "scaling.json", "markdown": folder / "scaling.md",
             "plot": folder / "scaling.png"}
    paths["json"].write_text(json.dumps(record, indent=2, default=str))
    verdicts = "\n".join(f"- {mode['verdict']}" for mode in record["modes"].values())
    machine = record["machine"]
    paths["markdown"].write_text(
        f"# Scaling of {record['pipeline']}\n\n"
        f"{record['dataset']['source']}: {record['dataset']['units']} units, "
        f"{record['dataset']['nbytes'] / 1e9:.3f} GB; {record['cluster']['kind']} cluster, "
        f"{record['cluster']['threads_per_worker']} thread(s) per worker; "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB; median of "
        f"{record['repeats']} repeat(s).\n\n{markdown_table(record)}\n\n{verdicts}\n")
    if plot:
        plot_scaling(record, paths["plot"])
    return paths


def markdown_table(record: dict[str, Any]) -> str:
    """One row per point: time, speedup, efficiency and what limits it."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for mode in record["modes"].values():
        for p in mode["points"]:
            goes = p["time_goes_total"]
            capacity = p["threads"] * goes["wall"]
            cells = [
                p["mode"], str(p["workers"]), str(p["units"]),
                f"{p['seconds']['median']:.2f}", f"{p['seconds']['spread']:.0%}",
                _number(p.get("speedup") or p.get("scaled_speedup"), "{:.2f}"),
                f"{p['efficiency']:.0%}", _number(p.get("karp_flatt"), "{:.3f}"),
                f"{p['throughput']['gb_per_second']:.3f}",
                f"{p['throughput']['units_per_second']:.1f}",
                _number(p["throughput"]["core_hours_per_gb"], "{:.4f}"),
                f"{goes['idle'] / capacity:.0%}" if capacity else "–",
                _number(p["scheduler"]["ms_per_task"], "{:.2f}"),
                "yes" if p["valid"] else "no: " + ", ".join(p["differs"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: float | None, form: str) -> str:
    return "–" if value is None else form.format(value)


def plot_scaling(record: dict[str, Any], path: Path) -> Path:
    """Speedup and efficiency against workers (ideal lines, the Amdahl fit), and per
    worker count the thread-seconds by category and the wall time by stage."""
    figure = Figure(figsize=(12, 8.5))
    speed, efficiency, where, stages = (figure.add_subplot(2, 2, i) for i in range(1, 5))
    counts = record["workers"]
    grid = np.geomspace(min(counts), max(counts) * 2, 50)
    strong, weak = record["modes"].get("strong"), record["modes"].get("weak")
    speed.plot(grid, grid, "k--", lw=1, label="ideal")
    efficiency.axhline(1.0, color="k", ls="--", lw=1, label="ideal")
    efficiency.axhline(record["threshold"], color="grey", ls=":", lw=1,
                       label=f"threshold {record['threshold']:.0%}")
    if strong:
        ks = [p["workers"] for p in strong["points"]]
        base = strong["points"][0]["seconds"]["median"] * ks[0]
        low = [base / p["seconds"]["max"] for p in strong["points"]]
        high = [base / p["seconds"]["min"] for p in strong["points"]]
        s = [p["speedup"] for p in strong["points"]]
        speed.errorbar(ks, s, yerr=[np.subtract(s, low), np.subtract(high, s)], fmt="o-",
                       capsize=3, label="strong: measured (min-max of repeats)")
        efficiency.plot(ks, [p["efficiency"] for p in strong["points"]], "o-",
                        label="strong: S(K)/K")
        if strong["amdahl"]:
            fit = AmdahlFit(strong["amdahl"]["serial_seconds"],
                            strong["amdahl"]["parallel_seconds"])
            speed.plot(grid, [fit.time(1) / fit.time(k) for k in grid], color="C0", lw=1,
                       alpha=0.6, label=f"Amdahl fit, serial {fit.serial_fraction:.1%}")
            efficiency.plot(grid, [fit.efficiency(k) for k in grid], color="C0", lw=1,
                            alpha=0.6, label="Amdahl fit")
    if weak:
        ks = [p["workers"] for p in weak["points"]]
        speed.plot(ks, [p["scaled_speedup"] for p in weak["points"]], "s-", color="C1",
                   label="weak: scaled speedup K·T(1)/T(K)")
        efficiency.plot(ks, [p["efficiency"] for p in weak["points"]], "s-", color="C1",
                        label="weak: T(1)/T(K)")
    speed.set_yscale("log", base=2)
    for axes, title in ((speed, "speedup"), (efficiency, "efficiency")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(counts, [str(k) for k in counts])
        axes.set_xlabel("workers")
        axes.set_title(title)
        axes.legend(fontsize=7)
    efficiency.set_ylim(0, 1.15)
    shown = strong or weak
    assert shown is not None
    _stacked(where, shown["points"], CATEGORIES, lambda p, c: p["time_goes_total"][c]
             / max(p["threads"] * p["time_goes_total"]["wall"], 1e-12),
             "share of worker thread-seconds", COLOURS)
    names = list(dict.fromkeys(n for p in shown["points"] for n in p["time_goes"]))
    _stacked(stages, shown["points"], names, lambda p, n: p["time_goes"].get(n, {}).get(
        "wall", 0.0), "wall seconds by stage", None)
    mode = "strong" if strong else "weak"
    where.set_title(f"where the time goes ({mode}; median repeat)")
    stages.set_title(f"stages ({mode}; median repeat)")
    figure.suptitle(f"{record['pipeline']} on {record['cluster']['kind']}: "
                    f"{record['machine']['cores']} cores")
    figure.tight_layout()
    return save_figure(figure, path)


def _stacked(axes: Any, points: list[dict[str, Any]], parts: Any, value: Any, label: str,
             colours: dict[str, str] | None) -> None:
    positions = np.arange(len(points))
    bottom = np.zeros(len(points))
    for part in parts:
        heights = np.array([value(p, part) for p in points])
        axes.bar(positions, heights, bottom=bottom, label=part,
                 color=colours[part] if colours else None)
        bottom += heights
    axes.set_xticks(positions, [str(p["workers"]) for p in points])
    axes.set_xlabel("workers")
    axes.set_ylabel(label)
    axes.legend(fontsize=7)
