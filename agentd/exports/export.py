"""``agentd trajectories export``: filtered JSONL, Parquet and SRL step data.

The training formats (``sft``, ``groups``) live in ``exports.sft`` and
``exports.groups`` and read records through ``kept_steps`` here.

Every export streams: records are read one line at a time and written in bounded chunks
(Parquet row groups of ``ROW_GROUP`` rows). Output goes to a temporary file next to ``--out``
that is fsynced and renamed into place, so a reader never sees half an export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from agentd.exports.card import CardStats
from agentd.exports.extras import Step, decode_extras
from agentd.exports.srl import episode_instances, group_episodes, is_expert_episode
from agentd.exports.tasks import TaskIndex, TaskMetaView
from agentd.fileio import atomic_output
from agentd.records import TrajectoryRecord
from agentd.trajectories.reader import SchemaError, decode_record, iter_files, iter_lines

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Filter:
    """Which records an export keeps."""

    verified_only: bool = False
    policy: str | None = None  # matches the kind ("teacher") or "kind/model"
    split: str | None = None
    recipe: str | None = None  # needs a task index: the record does not name its recipe
    min_reward: float | None = None  # a step's total (an episode's return for episode units)

    def keep(self, record: TrajectoryRecord, recipe: str | None = None) -> bool:
        if self.verified_only and not record.verified:
            return False
        if self.min_reward is not None and record.reward.total < self.min_reward:
            return False
        if self.split is not None and record.split != self.split:
            return False
        if self.recipe is not None and recipe != self.recipe:
            return False
        p = record.policy
        return self.policy is None or self.policy in (p.kind, f"{p.kind}/{p.model}")

    def per_episode(self) -> Filter:
        """The filter for reading whole episodes: only what every step of an episode shares
        (policy, split, recipe); verified-only and the minimum reward judge the episode."""
        return Filter(policy=self.policy, split=self.split, recipe=self.recipe)


@dataclass
class ExportResult:
    """What an export read and wrote, and the counts for its dataset card."""

    read: int = 0
    written: int = 0
    skipped_lines: int = 0
    bad_prompts: int = 0  # sft/groups: a prompt that is not the flat form of a chat
    card: CardStats = field(default_factory=CardStats)


def _kept(paths: Iterable[Path], flt: Filter, result: ExportResult,
          tasks: TaskIndex | None = None) -> Iterator[tuple[bytes, TrajectoryRecord]]:
    """(line, record) for every decodable record that passes the filter."""
    for path in iter_files(paths):
        for _, line, complete in iter_lines(path):
            record = _decode(line) if complete else None
            if record is None:
                result.skipped_lines += 1  # `verify` is the place to hear about these
                continue
            result.read += 1
            if flt.keep(record, _recipe(tasks, record.task_id) if flt.recipe else None):
                yield line, record


def _meta(tasks: TaskIndex | None, task_id: str) -> TaskMetaView | None:
    return tasks.meta(task_id) if tasks is not None else None


def _recipe(tasks: TaskIndex | None, task_id: str) -> str | None:
    meta = _meta(tasks, task_id)
    return meta.recipe if meta is not None else None


def kept_steps(paths: Iterable[Path], flt: Filter, result: ExportResult,
               tasks: TaskIndex | None = None) -> Iterator[Step]:
    """Every kept record with its optional newer fields (verdict, reasoning, step kind)."""
    for line, record in _kept(paths, flt, result, tasks):
        yield Step(record, decode_extras(line))


def _decode(line: bytes) -> TrajectoryRecord | None:
    try:
        return decode_record(line)
    except SchemaError:
        return None


def export_jsonl(paths: Iterable[Path], out: Path, flt: Filter,
                 tasks: TaskIndex | None = None) -> ExportResult:
    """Copy the kept records' lines byte for byte."""
    result = ExportResult()
    with atomic_output(out) as f:
        for line, record in _kept(paths, flt, result, tasks):
            f.write(line + b"\n")
            result.written += 1
            result.card.add_record(record, _meta(tasks, record.task_id))
    return result


def export_parquet(paths: Iterable[Path], out: Path, flt: Filter,
                   tasks: TaskIndex | None = None) -> ExportResult:
    """One row per kept record with the flat schema of ``exports.parquet``."""
    from agentd.exports.parquet import ParquetSink  # pyarrow is slow to import

    result = ExportResult()
    with atomic_output(out) as f, ParquetSink(f) as sink:
        for _, record in _kept(paths, flt, result, tasks):
            sink.add(record)
            result.written += 1
            result.card.add_record(record, _meta(tasks, record.task_id))
    return result


def export_srl(paths: Iterable[Path], out: Path, flt: Filter,
               tasks: TaskIndex | None = None) -> ExportResult:
    """SRL instances (JSONL) from every verified expert episode among the kept records."""
    result = ExportResult()
    records = (record for _, record in _kept(paths, flt, result, tasks))
    with atomic_output(out) as f:
        for steps in group_episodes(records):
            if not is_expert_episode(steps):
                continue
            task = tasks.get(steps[0].task_id) if tasks is not None else None
            meta = _meta(tasks, steps[0].task_id)
            for record, instance in zip(steps, episode_instances(steps, task), strict=True):
                f.write(_encoder.encode(instance) + b"\n")
                result.written += 1
                result.card.add_record(record, meta)
    return result


Exporter = Callable[[Iterable[Path], Path, Filter, TaskIndex | None], ExportResult]
