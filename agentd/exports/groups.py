"""``export --format groups``: GRPO groups — the rollouts of one task by one policy.

Every finished episode of the same task with the same policy (kind and model, across the runs
read) is one rollout of a group. An episode's reward is its return (the sum of its step
totals); the group carries the mean and the population standard deviation of those rewards
and each rollout its advantage ``(reward - mean) / std``. The SRL paper's dynamic sampling
drops groups whose reward std is below ``epsilon``: every rollout scored the same, so the
group carries no learning signal. One row per rollout (long format), so ``datasets`` can
filter and group it; rows of one group share ``group_id``.

Two streaming passes over the shards: the first collects only the rewards per group, the
second writes the rollouts of the groups kept. Memory holds a float per episode and the
episodes still open, never the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentd.exports.chat import PromptFormatError
from agentd.exports.columns import episode_columns, reward_columns
from agentd.exports.export import ExportResult, Filter
from agentd.exports.extras import Step, episode_reward
from agentd.exports.rows import RowSink, row_format
from agentd.exports.sft import episodes, step_messages
from agentd.exports.tasks import TaskIndex
from agentd.exports.tokens import token_columns
from agentd.fileio import atomic_output

DEFAULT_EPSILON = 1e-6


@dataclass(frozen=True)
class GroupStats:
    """One group's size, reward mean and standard deviation."""

    size: int
    mean: float
    std: float


@dataclass
class GroupsResult:
    """What the groups export read, kept and wrote."""

    export: ExportResult = field(default_factory=ExportResult)
    groups: int = 0
    kept: int = 0
    epsilon: float = DEFAULT_EPSILON


def group_id(steps: list[Step]) -> str:
    r = steps[0].record
    return f"{r.task_id}:{r.policy.kind}/{r.policy.model}"


def _finished(steps: list[Step]) -> bool:
    return bool(steps) and steps[-1].record.done and \
        [s.record.step for s in steps] == list(range(len(steps)))


def group_stats(rewards: list[float]) -> GroupStats:
    """Mean and population std (the GRPO normalisation) of a group's episode rewards."""
    mean = sum(rewards) / len(rewards)
    var = sum((x - mean) ** 2 for x in rewards) / len(rewards)
    return GroupStats(len(rewards), mean, math.sqrt(var))


def collect_groups(paths: Iterable[Path], flt: Filter,
                   tasks: TaskIndex | None) -> dict[str, GroupStats]:
    """Pass one: every group's statistics, from finished episodes only."""
    rewards: dict[str, list[float]] = {}
    for steps in episodes(paths, flt, ExportResult(), tasks):
        if _finished(steps):
            rewards.setdefault(group_id(steps), []).append(episode_reward(steps))
    return {gid: group_stats(rs) for gid, rs in rewards.items()}


def _step_entry(step: Step) -> dict[str, Any]:
    r = step.record
    return {"step": r.step, "messages": step_messages(step), "verified": r.verified,
            "done": r.done, "step_kind": step.step_kind, **reward_columns(r.reward),
            **token_columns(r.usage)}


def rollout_row(steps: list[Step], stats: GroupStats, tasks: TaskIndex | None) -> dict[str, Any]:
    """One rollout of a kept group: the episode, its steps, and its place in the group."""
    meta = tasks.meta(steps[0].record.task_id) if tasks is not None else None
    reward = episode_reward(steps)
    return {"group_id": group_id(steps), "group_size": stats.size,
            "group_reward_mean": stats.mean, "group_reward_std": stats.std,
            "advantage": (reward - stats.mean) / stats.std if stats.std > 0 else 0.0,
            "prompt": step_messages(steps[0])[:-1],  # what every rollout of the group saw first
            **episode_columns(steps, meta), "steps": [_step_entry(s) for s in steps]}


def export_groups(paths: Iterable[Path], out: Path, flt: Filter, tasks: TaskIndex | None, *,
                  epsilon: float = DEFAULT_EPSILON) -> GroupsResult:
    """Write the rollouts of every group whose reward std is at least ``epsilon``."""
    from agentd.exports.schemas import groups_schema

    paths = list(paths)
    stats = collect_groups(paths, flt, tasks)
    kept = {gid for gid, s in stats.items() if s.std >= epsilon}
    result = GroupsResult(groups=len(stats), kept=len(kept), epsilon=epsilon)
    with atomic_output(out) as f, RowSink(f, row_format(out.name), groups_schema) as sink:
        for steps in episodes(paths, flt, result.export, tasks):
            gid = group_id(steps) if steps else ""
            if gid not in kept or not _finished(steps):
                continue
            try:
                row = rollout_row(steps, stats[gid], tasks)
            except PromptFormatError:
                result.export.bad_prompts += 1
                continue
            sink.add(row)
            result.export.card.add(row, steps)
    result.export.written = sink.rows
    return result
