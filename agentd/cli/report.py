"""``agentd report`` (the teacher report, from the shards and the queue) and ``agentd eval``
(runs side by side, from the shards and the task files)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

from agentd.config import Settings, load_settings
from agentd.errors import UsageError
from agentd.exports.tasks import TaskIndex, task_files
from agentd.records import TrajectoryRecord
from agentd.reports.eval_report import overall_table, write_eval
from agentd.reports.evaluation import RunEvaluation, evaluate
from agentd.reports.teacher import build_report


def report_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    out, steps, verified = anyio.run(build_report, settings, args.run_id)
    print(f"wrote {out}: {steps} steps, {verified} verified steps")
    return 0 if steps else 1


_LABEL = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a table header and a chart legend


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UsageError(f"--k wants positive integers such as 1,5, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise UsageError(f"--k wants positive integers such as 1,5, got {text!r}")
    return ks


def _run_paths(settings: Settings, spec: str) -> tuple[str, Path]:
    """``LABEL=RUN`` or ``RUN``: a run id under the trajectories directory, or shard paths."""
    label, sep, run = spec.partition("=")
    if not sep:
        label, run = "", spec
    given = Path(run)
    root = settings.path(settings.agentd.paths.trajectories)
    if given.exists():
        return label or given.name, given
    if "/" not in run and (root / run).is_dir():
        return label or run, root / run
    raise UsageError(f"no run {run!r}: neither a path nor a run under {root}")


def _policy(wanted: str | None) -> Callable[[TrajectoryRecord], bool] | None:
    """``KIND`` or ``KIND/MODEL``, as ``trajectories export --policy`` takes it."""
    if wanted is None:
        return None
    return lambda r: wanted in (r.policy.kind, f"{r.policy.kind}/{r.policy.model}")


def eval_command(args: argparse.Namespace) -> int:
    """Evaluate each run, print the overall table and write ``reports/eval/``."""
    settings = load_settings(args.config)
    ks = _ks(args.k)
    named = [_run_paths(settings, spec) for spec in args.runs]
    labels = [label for label, _ in named]
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise UsageError(f"run label {label[:40]!r}: letters, digits, '.', '_', '-' only "
                             "(name it as LABEL=RUN)")
        if labels.count(label) > 1:
            raise UsageError(f"two runs are labelled {label!r}: name them as LABEL=RUN")
    out_dir: Path = args.out or settings.path(settings.agentd.paths.reports) / "eval"
    try:  # before the work: a bad --out is a usage error, not a lost evaluation
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the evaluation to {out_dir}: "
                         f"{exc.strerror or exc}") from None
    tasks = TaskIndex(task_files(args.tasks or [settings.path(
        settings.agentd.paths.processed_data)]))
    runs: list[RunEvaluation] = []
    for label, path in named:
        run = evaluate(label, [path], tasks, split=args.split, keep=_policy(args.policy))
        print(f"{label}: {run.overall.count} finished episodes of {run.overall.tasks} tasks"
              + (f", {run.unfinished} unfinished" if run.unfinished else ""), file=sys.stderr)
        runs.append(run)
    target = write_eval(runs, ks, out_dir)
    print("\n".join(overall_table(runs, ks)))
    print(f"wrote {target}, {target.with_suffix('.json').name}, eval.png")
    return 0 if any(r.episodes for r in runs) else 1
