"""``agentd trajectories stats|verify|export PATH...`` (wired in ``agentd/cli.py``).

Paths are files or directories (searched recursively for ``*.jsonl``). ``verify`` exits 1
when anything is wrong and lists the first problems as ``file:line``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agentd.config import load_settings
from agentd.errors import ConfigError, UsageError
from agentd.exports.card import card_text, write_card
from agentd.exports.export import (
    ExportResult,
    Filter,
    export_jsonl,
    export_parquet,
    export_srl,
)
from agentd.exports.groups import export_groups
from agentd.exports.sft import export_sft
from agentd.exports.tasks import TaskIndex, task_files
from agentd.trajectories.stats import collect_stats, format_stats
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
    """Tasks for SRL context, recipes and licenses: ``--tasks`` if given, else the
    configured processed data."""
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


_COLUMNS = {
    "jsonl": "The trajectory records, one JSON object per line, exactly as the engine wrote them.",
    "parquet": "The flat schema of `agentd.exports.parquet` (one row per record).",
    "srl": "SRL step instances: context up to step k, the expert's step k as the target.",
    "sft": "`messages` (or `prompt` + `completion`): the chat exactly as sent and received; "
           "the assistant turn is the target. Then task, episode, step, reward, verdict, "
           "provenance and token columns (`prompt_token_ids`, `completion_token_ids`, "
           "`loss_mask` over both, `token_ids_source`).",
    "groups": "One rollout per row: `group_id`, `group_size`, `group_reward_mean`, "
              "`group_reward_std`, `advantage`, the first step's `prompt`, episode columns "
              "and `steps` (each with its messages, rewards and token ids).",
}


def _filter(args: argparse.Namespace, tasks: TaskIndex | None) -> Filter:
    if args.recipe is not None and tasks is None:
        raise UsageError("--recipe needs the tasks (--tasks, or processed data in the project)")
    if args.format == "groups" and (args.verified_only or args.min_reward is not None):
        raise UsageError("groups keep failed rollouts on purpose: --verified-only and "
                         "--min-reward do not apply (the std filter is --epsilon)")
    if args.format == "srl" and args.min_reward is not None:
        raise UsageError("--min-reward would cut steps out of expert episodes: not for srl")
    return Filter(verified_only=args.verified_only, policy=args.policy, split=args.split,
                  recipe=args.recipe, min_reward=args.min_reward)


def _run_export(args: argparse.Namespace, paths: list[Path], flt: Filter,
                tasks: TaskIndex | None) -> tuple[ExportResult, list[str]]:
    """The export itself, and the lines it adds to the summary (and the card)."""
    if args.format == "sft":
        return export_sft(paths, args.out, flt, tasks, unit=args.sft_unit,
                          shape=args.sft_shape), [f"- unit: {args.sft_unit}"]
    if args.format == "groups":
        groups = export_groups(paths, args.out, flt, tasks, epsilon=args.epsilon)
        return groups.export, [f"- groups: {groups.kept} of {groups.groups} kept "
                               f"(reward std >= {groups.epsilon:g})"]
    exporters = {"jsonl": export_jsonl, "parquet": export_parquet, "srl": export_srl}
    return exporters[args.format](paths, args.out, flt, tasks), []


def export_command(args: argparse.Namespace) -> int:
    """Write the kept rows to ``--out`` atomically, and a dataset card beside them."""
    paths = _check_paths(args.paths)
    _check_out(args.out)
    tasks = _task_index(args)
    flt = _filter(args, tasks)
    result, summary = _run_export(args, paths, flt, tasks)
    filters = {"verified_only": flt.verified_only, "policy": flt.policy, "split": flt.split,
               "recipe": flt.recipe, "min_reward": flt.min_reward}
    card = write_card(args.out, card_text(args.out.name, args.format, result.card,
                                          summary=summary, filters=filters,
                                          columns=_COLUMNS[args.format]))
    unit = {"srl": "instances", "sft": "rows", "groups": "rollouts"}.get(args.format, "records")
    skipped = f", {result.skipped_lines} bad lines skipped" if result.skipped_lines else ""
    if result.bad_prompts:
        skipped += f", {result.bad_prompts} rows left out (prompt is not a chat)"
    print(f"{args.out}: {result.written} {unit} ({args.format}) from {result.read} "
          f"records{skipped}; card {card}")
    for line in summary:
        print(line.removeprefix("- "))
    return 0


def _check_out(out: Path) -> None:
    """``--out`` names a file to (re)write: refuse a directory before any record is read."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; name the file to write")
