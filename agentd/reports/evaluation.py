"""How well a run's policy solves tasks: episode success, pass@k, precision and steps.

An episode *succeeds* when the verifier accepted its final workspace (the ``verdict`` written
on its last step; records from before verdicts: complete and ending in a final match). Only
finished episodes are judged; one the run left open (killed, capped, failed) is counted as
``unfinished`` and kept out of every rate, so an interrupted run is not scored as a bad one.

pass@k is the unbiased estimator of Chen et al. (2021), over each task's ``n`` finished
episodes of which ``c`` succeeded::

    pass@k = 1 - C(n - c, k) / C(n, k)

averaged over the tasks with ``n >= k`` (a task with fewer episodes has no pass@k). Precision is
verified writing steps over writing steps (read steps are neutral, ``submit`` is judged by the
episode's success). Each number is given overall and per policy, split, recipe (a task built by
several recipes counts under each) and difficulty: the number of edits the task's reference
solution makes before its ``submit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agentd.exports.extras import group_by_episode
from agentd.exports.tasks import TaskIndex
from agentd.records import TrajectoryRecord
from agentd.trajectories import iter_records

DIMENSIONS = ("policy", "split", "recipe", "difficulty")
UNKNOWN = "?"  # a task the given task files do not have


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of ``k`` of ``n`` episodes (``c`` successful) succeeds."""
    if not 0 <= c <= n or not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 0 < k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) as a product: exact ratios, no huge binomials.
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass(frozen=True)
class Episode:
    """One finished episode, reduced to what the evaluation counts."""

    task_id: str
    policy: str
    split: str
    recipe: str
    difficulty: str
    accepted: bool
    steps: int
    write_steps: int
    verified_writes: int
    parse_failures: int

    def values(self, dimension: str) -> list[str]:
        """The slices this episode belongs to: one, except that a task built by several
        recipes (``a+b``) counts under each of them."""
        value: str = getattr(self, dimension)
        return value.split("+") if dimension == "recipe" else [value]


@dataclass
class Slice:
    """The episodes of one run that share a policy, split, recipe or difficulty (or all)."""

    episodes: list[Episode] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.episodes)

    @property
    def tasks(self) -> int:
        return len({e.task_id for e in self.episodes})

    @property
    def success(self) -> float:
        return _share(sum(e.accepted for e in self.episodes), self.count)

    @property
    def precision(self) -> float | None:
        writes = sum(e.write_steps for e in self.episodes)
        return sum(e.verified_writes for e in self.episodes) / writes if writes else None

    @property
    def parse_failure_rate(self) -> float:
        return _share(sum(e.parse_failures for e in self.episodes),
                      sum(e.steps for e in self.episodes))

    @property
    def mean_steps(self) -> float:
        return _share(sum(e.steps for e in self.episodes), self.count)

    def episodes_per_task(self) -> dict[str, tuple[int, int]]:
        """``task_id -> (finished episodes, successful episodes)``."""
        out: dict[str, tuple[int, int]] = {}
        for e in self.episodes:
            n, c = out.get(e.task_id, (0, 0))
            out[e.task_id] = (n + 1, c + e.accepted)
        return out

    def pass_at(self, k: int) -> float | None:
        """Mean pass@k over the tasks with at least ``k`` episodes; None when there are none."""
        values = [pass_at_k(n, c, k) for n, c in self.episodes_per_task().values() if n >= k]
        return sum(values) / len(values) if values else None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class RunEvaluation:
    """Every finished episode of one run (or set of shard files), and what was left out."""

    label: str
    episodes: list[Episode] = field(default_factory=list)
    unfinished: int = 0
    bad_lines: int = 0

    @property
    def overall(self) -> Slice:
        return Slice(list(self.episodes))

    def by(self, dimension: str) -> dict[str, Slice]:
        """The run's episodes split by one of ``DIMENSIONS``, in sorted order."""
        slices: dict[str, Slice] = {}
        for e in self.episodes:
            for value in e.values(dimension):
                slices.setdefault(value, Slice()).episodes.append(e)
        return dict(sorted(slices.items(), key=lambda kv: _natural(kv[0])))

    @property
    def max_episodes_per_task(self) -> int:
        return max((n for n, _ in self.overall.episodes_per_task().values()), default=0)


def _natural(value: str) -> tuple[int, str]:
    """Numbers in numeric order ("2 steps" before "10 steps"), then text."""
    head = value.split(" ", 1)[0]
    return (int(head), value) if head.isdigit() else (1 << 30, value)


def policy_name(record: TrajectoryRecord) -> str:
    """The policy kind and model (``actor/smollm2``, ``reference/reference``)."""
    return f"{record.policy.kind}/{record.policy.model or record.policy.endpoint}"


def difficulty_name(steps: int | None) -> str:
    if steps is None:
        return UNKNOWN
    return f"{steps} step" if steps == 1 else f"{steps} steps"


def finished(steps: list[TrajectoryRecord]) -> bool:
    """The episode's steps are 0..n with nothing missing and the last one ``done``."""
    return bool(steps) and steps[-1].done and [s.step for s in steps] == list(range(len(steps)))


def accepted(steps: list[TrajectoryRecord]) -> bool:
    """The verifier's verdict on the episode; older records: a final match on the last step."""
    for s in reversed(steps):
        if s.verdict is not None:
            return s.verdict.accepted
    return steps[-1].reward.final_match


def episode_of(steps: list[TrajectoryRecord], tasks: TaskIndex | None) -> Episode:
    first = steps[0]
    meta = tasks.meta(first.task_id) if tasks is not None else None
    writes = [s for s in steps if s.reward.step_kind == "write"]
    return Episode(
        task_id=first.task_id, policy=policy_name(first), split=first.split or UNKNOWN,
        recipe=(meta.recipe or UNKNOWN) if meta is not None else UNKNOWN,
        difficulty=difficulty_name(
            tasks.reference_steps(first.task_id) if tasks is not None else None),
        accepted=accepted(steps), steps=len(steps), write_steps=len(writes),
        verified_writes=sum(s.verified for s in writes),
        parse_failures=sum(s.parse_error is not None for s in steps))


def evaluate(label: str, paths: Iterable[Path], tasks: TaskIndex | None = None, *,
             split: str | None = None,
             keep: Callable[[TrajectoryRecord], bool] | None = None) -> RunEvaluation:
    """One streaming pass over a run's shards; only open episodes are held in memory."""
    result = RunEvaluation(label)

    def records() -> Iterator[TrajectoryRecord]:
        for _path, _line, item in iter_records(paths):
            if isinstance(item, Exception):
                result.bad_lines += 1
            elif (split is None or item.split == split) and (keep is None or keep(item)):
                yield item

    for steps in group_by_episode(records(), lambda r: r):
        if finished(steps):
            result.episodes.append(episode_of(steps, tasks))
        else:
            result.unfinished += 1
    return result
