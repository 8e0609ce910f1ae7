"""``reports/teacher/metrics.md``: precision and cost per policy/teacher, charts, dataset stats."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import anyio

from agentd.config import Settings
from agentd.engine.results import routed_submissions
from agentd.fileio import atomic_output
from agentd.reports import charts
from agentd.reports.metrics import GroupMetrics, ReportData, collect

_COLUMNS = ("policy / teacher", "episodes", "steps", "verified", "precision", "final match",
            "parse fail", "mean reward", "tokens (in/out)", "cost $", "p50 ms", "p95 ms")


def _row(g: GroupMetrics) -> list[str]:
    return [g.name, str(len(g.episodes)), str(g.steps), str(g.verified_steps),
            f"{g.precision:.3f}", f"{g.final_match_rate:.3f}", f"{g.parse_failure_rate:.3f}",
            f"{g.mean_reward:.3f}", f"{g.prompt_tokens}/{g.completion_tokens}",
            f"{g.cost_usd:.4f}", f"{g.latency(0.5):.1f}", f"{g.latency(0.95):.1f}"]


def _table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def dataset_section(processed_dir: Path) -> list[str]:
    """Per-split dataset numbers, read from the same stats.json ``agentd data stats`` prints."""
    path = processed_dir / "stats.json"
    if not path.exists():
        return ["_No dataset statistics yet (`agentd data build`)._"]
    stats: dict[str, Any] = json.loads(path.read_text())
    splits: dict[str, Any] = stats.get("splits", {})
    rows = [[name, str(s.get("tasks", 0)), str(len(s.get("by_recipe", {})))]
            for name, s in sorted(splits.items())]
    lines = _table(["split", "tasks", "recipes"], rows)
    if stats.get("corpus_version"):
        lines += ["", f"Corpus version (current build): `{stats['corpus_version']}`"]
    dropped = stats.get("drop_reasons") or stats.get("dropped") or {}
    if dropped:
        lines += ["", "Dropped while building: " + ", ".join(
            f"{k} {v}" for k, v in sorted(dropped.items()))]
    return lines


def _eval_link(eval_md: Path | None) -> str:
    if eval_md is not None and eval_md.exists():
        # Relative, so the link holds wherever the reports directory is copied.
        return "[the evaluation](../eval/eval.md)"
    return "`agentd eval RUN [RUN ...]` writes them to `reports/eval/eval.md`"


def render_markdown(data: ReportData, *, dataset: list[str], routing: list[dict[str, Any]],
                    images: dict[str, str], run_id: str | None,
                    eval_md: Path | None = None) -> str:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    scope = f"run `{run_id}`" if run_id else f"{len(data.runs)} run(s)"
    lines = [
        "# Teacher and policy metrics", "",
        f"Generated {now} over {scope}: {data.total_steps} steps, "
        f"**{data.total_verified} verified steps**.", "",
        "Precision = verified writing steps / writing steps. A writing step is verified when "
        "its output parsed, the action ran cleanly in the jail, it made no unrelated change "
        "and it moved the workspace toward an accepted final state; read steps are neutral. "
        "Episode success and pass@k per policy, recipe and difficulty: "
        f"{_eval_link(eval_md)}.", "",
        *_table(_COLUMNS, [_row(g) for _, g in sorted(data.groups.items())]), "",
    ]
    if data.bad_lines:
        lines += [f"{data.bad_lines} line(s) could not be read (see `agentd trajectories "
                  "verify`).", ""]
    lines += ["## Charts", ""] + [f"![{alt}]({src})" for alt, src in images.items()] + [""]
    lines += ["## Runs and their corpus", "", *_corpus_lines(data), ""]
    lines += ["## Teacher routing", "", *_routing_lines(routing), ""]
    lines += ["## Dataset", "", *dataset, ""]
    return "\n".join(lines)


def _corpus_lines(data: ReportData) -> list[str]:
    """Which corpus version (``stats.json``'s ``corpus_version``) each run's records name."""
    if not data.corpora:
        return ["_No runs._"]
    rows = [[run, ", ".join(sorted(v or "unknown (recorded before corpus versions)"
                                   for v in versions))]
            for run, versions in sorted(data.corpora.items())]
    return _table(["run", "corpus version"], rows)


def _routing_lines(routing: list[dict[str, Any]]) -> list[str]:
    if not routing:
        return ["_Every submitted task went to its policy directly (no difficulty routing)._"]
    rows = [[str(r.get("run_id")), str(r.get("policy")), str(r.get("route")),
             str(r.get("min_failures")), str(r.get("tasks"))] for r in routing]
    return _table(["run", "policy", "route", "actor failures ≥", "tasks routed"], rows)


def write_report(data: ReportData, out_dir: Path, *, processed_dir: Path,
                 routing: list[dict[str, Any]], run_id: str | None) -> Path:
    """Write ``metrics.md`` and its PNGs under ``out_dir`` atomically; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "reward histogram": charts.reward_histogram(data, out_dir / "reward_hist.png").name,
        "verified steps over time": charts.verified_over_time(
            data, out_dir / "verified_over_time.png").name,
        "precision per teacher": charts.precision_per_group(
            data, out_dir / "precision.png").name,
    }
    text = render_markdown(data, dataset=dataset_section(processed_dir), routing=routing,
                           images=images, run_id=run_id,
                           eval_md=out_dir.parent / "eval" / "eval.md")
    target = out_dir / "metrics.md"
    with atomic_output(target) as f:
        f.write(text.encode())
    return target


async def routing_rows(database: Path) -> list[dict[str, Any]]:
    """Difficulty-routed submissions recorded by the engine (read-only, no daemon needed)."""
    return [{"run_id": s.run_id, "policy": s.policy, "route": s.route,
             "min_failures": s.min_failures, "tasks": s.tasks}
            for s in await routed_submissions(database)]


async def build_report(settings: Settings, run_id: str | None) -> tuple[Path, int, int]:
    """Write the teacher report from the shards and the database; (its path, steps,
    verified steps)."""
    paths = settings.agentd.paths
    routing = await routing_rows(settings.path(paths.database))

    def write() -> tuple[Path, int, int]:
        root = settings.path(paths.trajectories)
        data = collect([root], run_id) if root.exists() else ReportData()
        out = write_report(data, settings.path(paths.reports) / "teacher",
                           processed_dir=settings.path(paths.processed_data),
                           routing=routing, run_id=run_id)
        return out, data.total_steps, data.total_verified

    return await anyio.to_thread.run_sync(write)
