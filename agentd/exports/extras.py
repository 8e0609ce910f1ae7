"""Record fields that newer writers add, read when present: the verdict, native reasoning and
the step kind.

The exports and the viewer decode each line twice: once as the ``TrajectoryRecord`` this
version knows, and once as ``RecordExtras``, a view in which every newer field is optional. A
record written before those fields existed reads with the defaults, so one exporter handles
shards of every age and shows the newer columns as soon as the engine writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from agentd.records import TrajectoryRecord


class VerdictCheck(msgspec.Struct, frozen=True):
    """One check the verifier ran on an episode."""

    name: str
    ok: bool
    detail: str = ""


class Verdict(msgspec.Struct, frozen=True):
    """The verifier's decision about an episode (absent in older records)."""

    accepted: bool
    decided_by: str = ""
    checks: list[VerdictCheck] = msgspec.field(default_factory=list)


class _OutputExtras(msgspec.Struct, frozen=True):
    reasoning: str = ""  # the model's native reasoning channel, separate from <think>


class _RewardExtras(msgspec.Struct, frozen=True):
    step_kind: str = ""  # "write" | "read" | "submit"


class RecordExtras(msgspec.Struct, frozen=True):
    """The optional fields of one line."""

    verdict: Verdict | None = None
    model_output: _OutputExtras = msgspec.field(default_factory=_OutputExtras)
    reward: _RewardExtras = msgspec.field(default_factory=_RewardExtras)


_EMPTY = RecordExtras()
_decoder = msgspec.json.Decoder(RecordExtras)


def decode_extras(line: bytes) -> RecordExtras:
    """The optional fields of a line; defaults when they are missing or malformed."""
    try:
        return _decoder.decode(line)
    except msgspec.MsgspecError:
        return _EMPTY


@dataclass(frozen=True)
class Step:
    """One record and its optional fields."""

    record: TrajectoryRecord
    extras: RecordExtras = field(default=_EMPTY)

    @property
    def verdict(self) -> Verdict | None:
        return self.extras.verdict

    @property
    def reasoning(self) -> str:
        return self.extras.model_output.reasoning

    @property
    def step_kind(self) -> str:
        return self.extras.reward.step_kind


EpisodeKey = tuple[str, str, int]


def episode_verdict(steps: list[Step]) -> Verdict | None:
    """The last verdict recorded in an episode (the verifier writes it on the final step)."""
    for s in reversed(steps):
        if s.verdict is not None:
            return s.verdict
    return None


def episode_accepted(steps: list[Step]) -> bool:
    """The verifier's verdict when there is one; else complete and ending in a final match."""
    verdict = episode_verdict(steps)
    if verdict is not None:
        return verdict.accepted
    if not steps or [s.record.step for s in steps] != list(range(len(steps))):
        return False
    last = steps[-1].record
    return last.done and last.reward.final_match


def episode_reward(steps: list[Step]) -> float:
    """The episode's return: the sum of its step totals."""
    return sum(s.record.reward.total for s in steps)


T = TypeVar("T")


def group_by_episode(items: Iterable[T],
                     record_of: Callable[[T], TrajectoryRecord]) -> Iterator[list[T]]:
    """Yield each episode's items (sorted by step) once its ``done`` step and all before it
    arrived; unfinished episodes come at the end. Only open episodes are held in memory; a
    duplicate step keeps its first copy."""
    open_: dict[EpisodeKey, dict[int, T]] = {}
    done_at: dict[EpisodeKey, int] = {}
    for item in items:
        record = record_of(item)
        key = (record.run_id, record.task_id, record.episode)
        group = open_.setdefault(key, {})
        group.setdefault(record.step, item)
        if record.done:
            done_at[key] = record.step
        if key in done_at and len(group) >= done_at[key] + 1:
            yield [group[k] for k in sorted(group)]
            del open_[key], done_at[key]
    for group in open_.values():
        yield [group[k] for k in sorted(group)]
