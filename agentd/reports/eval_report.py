"""``reports/eval/``: runs side by side as ``eval.md``, ``eval.json`` and ``eval.png``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentd.fileio import atomic_output
from agentd.reports import charts
from agentd.reports.evaluation import DIMENSIONS, RunEvaluation, Slice

NONE = "—"  # no value: no writing steps, or no task with k episodes


def _rate(value: float | None) -> str:
    return NONE if value is None else f"{value:.3f}"


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def metrics(s: Slice, ks: Sequence[int]) -> dict[str, Any]:
    """The numbers of one slice, as ``eval.json`` stores them."""
    return {"episodes": s.count, "tasks": s.tasks, "success": s.success,
            **{f"pass@{k}": s.pass_at(k) for k in ks}, "precision": s.precision,
            "parse_failure_rate": s.parse_failure_rate, "mean_steps": s.mean_steps}


def overall_table(runs: Sequence[RunEvaluation], ks: Sequence[int]) -> list[str]:
    header = ["run", "episodes", "tasks", "success", *(f"pass@{k}" for k in ks),
              "precision", "parse fail", "mean steps", "unfinished"]
    rows = []
    for run in runs:
        s = run.overall
        rows.append([f"`{run.label}`", str(s.count), str(s.tasks), _rate(s.success),
                     *(_rate(s.pass_at(k)) for k in ks), _rate(s.precision),
                     _rate(s.parse_failure_rate), f"{s.mean_steps:.2f}", str(run.unfinished)])
    return _table(header, rows)


def _breakdown(runs: Sequence[RunEvaluation], dimension: str, k: int) -> list[str]:
    """One row per value of ``dimension``; per run its episodes, success, pass@k, precision."""
    per_run = [run.by(dimension) for run in runs]
    values = list(dict.fromkeys(v for slices in per_run for v in slices))
    header = [dimension]
    for run in runs:
        header += [f"{run.label} n", f"{run.label} success", f"{run.label} pass@{k}",
                   f"{run.label} precision"]
    rows = []
    for value in values:
        row = [value]
        for slices in per_run:
            s = slices.get(value)
            row += ([NONE] * 4 if s is None else
                    [str(s.count), _rate(s.success), _rate(s.pass_at(k)), _rate(s.precision)])
        rows.append(row)
    return _table(header, rows)


def render(runs: Sequence[RunEvaluation], ks: Sequence[int], *, chart: str) -> str:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    k_top = max(ks)
    lines = [
        "# Evaluation", "",
        f"Generated {now}; {len(runs)} run(s) side by side.", "",
        "*Success*: the verifier accepted the episode's final workspace. *pass@k*: the unbiased "
        "estimator 1 − C(n−c, k)/C(n, k) over each task's n finished episodes (c successful), "
        "averaged over tasks with n ≥ k (— when none has). *Precision*: verified writing steps "
        "/ writing steps. *Unfinished* episodes (the run stopped before their last step) are "
        "left out of every rate.", "",
        "## Overall", "", *overall_table(runs, ks), "",
        f"![success and pass@k per run]({chart})", "",
    ]
    for dimension in DIMENSIONS:
        lines += [f"## By {dimension}", "", *_breakdown(runs, dimension, k_top), ""]
    bad = [f"`{r.label}`: {r.bad_lines}" for r in runs if r.bad_lines]
    if bad:
        lines += ["Lines that could not be read (see `agentd trajectories verify`): "
                  + ", ".join(bad), ""]
    return "\n".join(lines)


def to_json(runs: Sequence[RunEvaluation], ks: Sequence[int]) -> dict[str, Any]:
    return {"k": list(ks), "runs": [
        {"label": r.label, "unfinished": r.unfinished, "bad_lines": r.bad_lines,
         "overall": metrics(r.overall, ks),
         **{f"by_{d}": {v: metrics(s, ks) for v, s in r.by(d).items()} for d in DIMENSIONS}}
        for r in runs]}


def write_eval(runs: Sequence[RunEvaluation], ks: Sequence[int], out_dir: Path) -> Path:
    """Write the three files under ``out_dir`` (each atomically); returns ``eval.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = charts.success_per_run(runs, ks, out_dir / "eval.png").name
    with atomic_output(out_dir / "eval.json") as f:
        f.write(json.dumps(to_json(runs, ks), indent=2, sort_keys=True).encode() + b"\n")
    target = out_dir / "eval.md"
    with atomic_output(target) as f:
        f.write(render(runs, ks, chart=chart).encode())
    return target
