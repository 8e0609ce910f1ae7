"""SRL step data: action normalisation, the step reward, and instances from expert episodes.

Supervised RL (SRL) trains a policy step by step against an expert trajectory: for step ``k``
the context is the task plus the expert's steps ``0..k-1`` and the target is the expert's step
``k``. A candidate action's reward is the ``difflib.SequenceMatcher`` ratio between the
candidate and the expert action, ``-1`` when the candidate is not a well-formed action.

Both sides are normalised first so that formatting cannot earn or lose reward: YAML rules are
parsed and re-dumped with sorted keys, patterns have their whitespace collapsed, paths are
sorted, and the whole action is rendered as JSON with sorted keys. Normalised strings are
capped before comparison because ``SequenceMatcher`` is quadratic and model output is hostile.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec
import yaml

from agentd.records import Action, TrajectoryRecord, action_to_dict, convert_action, decode_action
from agentd.trajectories.extras import group_by_episode

BROKEN_FORMAT_REWARD = -1.0
MAX_COMPARE_CHARS = 2048  # worst case (repetitive text) ≈ 0.6 s; real actions are far shorter
_MAX_YAML_CHARS = 64 * 1024
_MAX_OBSERVATION_CHARS = 2048
_WS = re.compile(r"\s+")
_YAML_FIELDS = frozenset({"rule_yaml"})
_TEXT_FIELDS = frozenset({"pattern", "rewrite"})
EXPERT_POLICIES = frozenset({"reference", "teacher"})


def _collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


# libyaml when present: the pure-Python parser costs ~1.5 ms a rule, which adds up when an
# export normalises every expert step. Both produce the same canonical text for rules.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@functools.lru_cache(maxsize=4096)
def _normalise_yaml(text: str) -> str:
    """Parse and re-dump with sorted keys; unparsable YAML falls back to collapsed text."""
    if len(text) > _MAX_YAML_CHARS:
        return _collapse(text)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, C or Python
    except yaml.YAMLError:
        return _collapse(text)
    dumped = yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                       allow_unicode=True)
    return _collapse(dumped)


def _as_action(action: Action | Mapping[str, Any] | str | bytes) -> Action:
    if isinstance(action, str | bytes):
        return decode_action(action)
    if isinstance(action, Mapping):
        return convert_action(dict(action))
    return action


def normalise_action(action: Action | Mapping[str, Any] | str | bytes) -> str:
    """The canonical text of an action; raises ``msgspec`` errors when it is not an action."""
    fields = action_to_dict(_as_action(action))
    for key, value in list(fields.items()):
        if key in _YAML_FIELDS and isinstance(value, str):
            fields[key] = _normalise_yaml(value)
        elif key in _TEXT_FIELDS and isinstance(value, str):
            fields[key] = _collapse(value)
        elif key == "paths" and isinstance(value, list):
            fields[key] = sorted(value)
    return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def srl_similarity(
    candidate: Action | Mapping[str, Any] | str | bytes | None,
    expert: Action | Mapping[str, Any] | str | bytes,
) -> float:
    """SequenceMatcher ratio in ``[0, 1]`` of the normalised actions; ``-1`` for a broken format.

    A ``candidate`` that is ``None`` (the parser found no action) or that does not validate as
    an action is a broken format. The expert is trusted: if it is invalid this raises.
    """
    if candidate is None:
        return BROKEN_FORMAT_REWARD
    try:
        cand = normalise_action(candidate)
    except (msgspec.MsgspecError, TypeError, ValueError):
        return BROKEN_FORMAT_REWARD
    exp = normalise_action(expert)
    matcher = difflib.SequenceMatcher(None, cand[:MAX_COMPARE_CHARS], exp[:MAX_COMPARE_CHARS],
                                      autojunk=False)
    return matcher.ratio()


# ---------------------------------------------------------------- instances


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
