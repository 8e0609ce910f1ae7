"""``agentd report``: reads the trajectory shards and the queue, writes the teacher report."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any

from agentd.config import Settings, load_settings
from agentd.reports.metrics import ReportData, collect
from agentd.reports.teacher import write_report


def routing_rows(database: Path) -> list[dict[str, Any]]:
    """Difficulty-routed submissions recorded by the engine (read-only, no daemon needed)."""
    if not database.exists():
        return []
    uri = f"file:{database}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        try:
            rows = db.execute(
                "SELECT run_id, policy, route, min_failures, tasks FROM submissions"
                " WHERE route IS NOT NULL ORDER BY submitted_at").fetchall()
        except sqlite3.OperationalError:
            return []  # a database from before routing existed
    keys = ("run_id", "policy", "route", "min_failures", "tasks")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def build_report(settings: Settings, run_id: str | None) -> tuple[Path, int, int]:
    paths = settings.agentd.paths
    root = settings.path(paths.trajectories)
    data = collect([root], run_id) if root.exists() else ReportData()
    out = write_report(data, settings.path(paths.reports) / "teacher",
                       processed_dir=settings.path(paths.processed_data),
                       routing=routing_rows(settings.path(paths.database)), run_id=run_id)
    return out, data.total_steps, data.total_verified


def report_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    out, steps, verified = build_report(settings, args.run_id)
    print(f"wrote {out}: {steps} steps, {verified} verified steps")
    return 0 if steps else 1
