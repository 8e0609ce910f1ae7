"""PNG charts for the report (matplotlib, headless Agg backend)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from agentd.reports.evaluation import RunEvaluation
from agentd.reports.metrics import ReportData


def reward_histogram(data: ReportData, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, group in sorted(data.groups.items()):
        ax.hist(group.rewards, bins=30, alpha=0.6, label=name)
    ax.set_xlabel("step reward (total)")
    ax.set_ylabel("steps")
    ax.set_title("Reward per step")
    if data.groups:
        ax.legend(fontsize=8)
    return _save(fig, out)


def verified_over_time(data: ReportData, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    points = sorted(data.timeline)
    times: list[float] = []
    running: list[int] = []
    total = 0
    for created_at, verified in points:
        total += verified
        times.append(dt.datetime.fromisoformat(created_at).timestamp() / 86400.0)
        running.append(total)
    # matplotlib's date numbers are days since the Unix epoch.
    ax.plot(times, running, drawstyle="steps-post")
    ax.xaxis_date()
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("verified steps (cumulative)")
    ax.set_title("Verified steps over time")
    fig.autofmt_xdate()
    return _save(fig, out)


def precision_per_group(data: ReportData, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    names = sorted(data.groups)
    values = [data.groups[n].precision for n in names]
    bars = ax.bar(range(len(names)), values)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("precision (verified / steps)")
    ax.set_title("Precision per policy / teacher")
    return _save(fig, out)


def success_per_run(runs: Sequence[RunEvaluation], ks: Sequence[int], out: Path) -> Path:
    """Grouped bars: episode success, each pass@k and precision, one colour per run."""
    names = ["success", *(f"pass@{k}" for k in ks), "precision"]
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(names) * max(1, len(runs))), 4))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        s = run.overall
        values = [s.success, *(s.pass_at(k) for k in ks), s.precision]
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(names))]
        bars = ax.bar(xs, [v or 0.0 for v in values], width, label=run.label)
        ax.bar_label(bars, labels=["—" if v is None else f"{v:.2f}" for v in values],
                     fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("rate")
    ax.set_title("Episode success, pass@k and precision per run")
    if runs:
        ax.legend(fontsize=8)
    return _save(fig, out)


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return out
