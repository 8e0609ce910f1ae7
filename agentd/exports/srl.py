"""SRL instances from expert episodes (``--format srl``).

Supervised RL (SRL) trains a policy step by step against an expert trajectory: for step ``k``
the context is the task plus the expert's steps ``0..k-1`` and the target is the expert's step
``k``, whose reward is ``episode.similarity.srl_similarity``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from agentd.episode.similarity import normalise_action
from agentd.exports.extras import group_by_episode
from agentd.records import Action, TrajectoryRecord, action_to_dict

_MAX_OBSERVATION_CHARS = 2048
EXPERT_POLICIES = frozenset({"reference", "teacher"})


class SrlStep(msgspec.Struct, frozen=True):
    """One earlier expert step as context: the action and a short observation."""

    step: int
    action: dict[str, Any]
    observation: str


class SrlInstance(msgspec.Struct, frozen=True):
    """One SRL training instance: context up to step ``k``, target = the expert's step ``k``."""

    instance_id: str
    run_id: str
    task_id: str
    episode: int
    step: int
    split: str
    expert_kind: str
    expert_model: str
    instruction: str
    files: dict[str, str]
    prompt: str
    previous_steps: list[SrlStep]
    target_action: dict[str, Any]
    target_normalised: str
    target_think: str
    reward_total: float
    reward_progress: float
    final_match: bool


class TaskContext(msgspec.Struct, frozen=True):
    """What SRL needs of a task: its instruction and its files before any step."""

    instruction: str
    files: dict[str, str]


def observation_text(record: TrajectoryRecord) -> str:
    """A short, bounded rendering of what the step's action did."""
    result = record.sandbox_result
    if result is None:
        return f"parse error: {record.parse_error}" if record.parse_error else "no result"
    head = (f"exit_code={result.exit_code} error_kind={result.error_kind} "
            f"changed={','.join(result.changed_files)}")
    body = result.diff or result.stdout or result.error
    return f"{head}\n{body}"[:_MAX_OBSERVATION_CHARS]


def is_expert_episode(steps: list[TrajectoryRecord]) -> bool:
    """Complete (steps ``0..n-1``, last one done), ends in a final match, every step parsed."""
    if not steps or steps[-1].policy.kind not in EXPERT_POLICIES:
        return False
    if [r.step for r in steps] != list(range(len(steps))):
        return False
    last = steps[-1]
    if not (last.done and last.reward.final_match):
        return False
    return all(r.reward.format_ok and r.model_output.action is not None for r in steps)


def episode_instances(
    steps: list[TrajectoryRecord], task: TaskContext | None
) -> Iterator[SrlInstance]:
    """SRL instances of one verified expert episode (``steps`` sorted by step)."""
    previous: list[SrlStep] = []
    for record in steps:
        action = record.model_output.action
        assert action is not None  # is_expert_episode checked it
        yield _instance(record, action, task, list(previous))
        previous.append(SrlStep(step=record.step, action=action_to_dict(action),
                                observation=observation_text(record)))


def _instance(record: TrajectoryRecord, action: Action, task: TaskContext | None,
              previous: list[SrlStep]) -> SrlInstance:
    return SrlInstance(
        instance_id=f"{record.run_id}:{record.task_id}:{record.episode}:{record.step}",
        run_id=record.run_id, task_id=record.task_id, episode=record.episode,
        step=record.step, split=record.split, expert_kind=record.policy.kind,
        expert_model=record.policy.model,
        instruction=task.instruction if task else "", files=task.files if task else {},
        prompt=record.prompt, previous_steps=previous, target_action=action_to_dict(action),
        target_normalised=normalise_action(action), target_think=record.model_output.think,
        reward_total=record.reward.total, reward_progress=record.reward.progress,
        final_match=record.reward.final_match,
    )


def group_episodes(
    records: Iterable[TrajectoryRecord],
) -> Iterator[list[TrajectoryRecord]]:
    """Gather each episode's steps and yield it once it is complete up to its ``done`` step.

    Memory holds only the episodes still open; at the end, unfinished episodes are yielded
    too (they fail ``is_expert_episode`` but a caller may want to count them). A duplicate
    step keeps its first copy.
    """
    return group_by_episode(records, _identity)


def _identity(record: TrajectoryRecord) -> TrajectoryRecord:
    return record
