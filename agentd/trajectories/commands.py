"""``agentd trajectories stats|verify|export PATH...`` (wired in ``agentd/cli.py``).

Paths are files or directories (searched recursively for ``*.jsonl``). ``verify`` exits 1
when anything is wrong and lists the first problems as ``file:line``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agentd.config import load_settings
from agentd.errors import ConfigError, UsageError
from agentd.trajectories.export import (
    ExportResult,
    Filter,
    export_jsonl,
    export_parquet,
    export_srl,
)
from agentd.trajectories.stats import collect_stats, format_stats
from agentd.trajectories.tasks import TaskIndex, task_files
from agentd.trajectories.verify import verify_paths


def _check_paths(paths: list[Path]) -> list[Path]:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    return paths


def verify_command(args: argparse.Namespace) -> int:
    """Print a summary; exit 1 with the first problems listed when anything is wrong."""
    report = verify_paths(_check_paths(args.paths))
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}")
    hidden = sum(report.counts.values()) - len(report.problems)
    if hidden > 0:
        print(f"  … and {hidden} more")
    return 0 if report.ok else 1


def stats_command(args: argparse.Namespace) -> int:
    """Print counts per run, policy and split."""
    stats = collect_stats(_check_paths(args.paths))
    print(format_stats(stats))
    return 0


def _task_index(args: argparse.Namespace) -> TaskIndex | None:
    """Tasks for SRL context: ``--tasks`` if given, else the configured processed data."""
    given: list[Path] | None = getattr(args, "tasks", None)
    if given:
        return TaskIndex(task_files(_check_paths(given)))
    try:
        settings = load_settings(args.config)
    except ConfigError:
        if args.config is not None:
            raise
        return None  # no project here: instances carry the recorded prompt as context
    processed = settings.path(settings.agentd.paths.processed_data)
    return TaskIndex(task_files([processed])) if processed.is_dir() else None


def export_command(args: argparse.Namespace) -> int:
    """Write the kept records (or SRL instances) to ``--out`` atomically."""
    paths = _check_paths(args.paths)
    flt = Filter(verified_only=args.verified_only, policy=args.policy, split=args.split)
    result: ExportResult
    if args.format == "jsonl":
        result = export_jsonl(paths, args.out, flt)
    elif args.format == "parquet":
        result = export_parquet(paths, args.out, flt)
    else:
        result = export_srl(paths, args.out, flt, _task_index(args))
    unit = "instances" if args.format == "srl" else "records"
    skipped = f", {result.skipped_lines} bad lines skipped" if result.skipped_lines else ""
    print(f"{args.out}: {result.written} {unit} ({args.format}) from {result.read} "
          f"records{skipped}")
    return 0
