"""``agentd trajectories export``: filtered JSONL, Parquet and SRL step data.

Every export streams: records are read one line at a time and written in bounded chunks
(Parquet row groups of ``ROW_GROUP`` rows). Output goes to a temporary file next to ``--out``
that is fsynced and renamed into place, so a reader never sees half an export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agentd.fileio import atomic_output
from agentd.records import TrajectoryRecord
from agentd.trajectories.reader import SchemaError, decode_record, iter_files, iter_lines
from agentd.trajectories.srl import episode_instances, group_episodes, is_expert_episode
from agentd.trajectories.tasks import TaskIndex

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Filter:
    """Which records an export keeps."""

    verified_only: bool = False
    policy: str | None = None  # matches the kind ("teacher") or "kind/model"
    split: str | None = None

    def keep(self, record: TrajectoryRecord) -> bool:
        if self.verified_only and not record.verified:
            return False
        if self.split is not None and record.split != self.split:
            return False
        p = record.policy
        return self.policy is None or self.policy in (p.kind, f"{p.kind}/{p.model}")


@dataclass
class ExportResult:
    """What an export read and wrote."""

    read: int = 0
    written: int = 0
    skipped_lines: int = 0


def _kept(paths: Iterable[Path], flt: Filter,
          result: ExportResult) -> Iterator[tuple[bytes, TrajectoryRecord]]:
    """(line, record) for every decodable record that passes the filter."""
    for path in iter_files(paths):
        for _, line, complete in iter_lines(path):
            record = _decode(line) if complete else None
            if record is None:
                result.skipped_lines += 1  # `verify` is the place to hear about these
                continue
            result.read += 1
            if flt.keep(record):
                yield line, record


def _decode(line: bytes) -> TrajectoryRecord | None:
    try:
        return decode_record(line)
    except SchemaError:
        return None


def export_jsonl(paths: Iterable[Path], out: Path, flt: Filter) -> ExportResult:
    """Copy the kept records' lines byte for byte."""
    result = ExportResult()
    with atomic_output(out) as f:
        for line, _ in _kept(paths, flt, result):
            f.write(line + b"\n")
            result.written += 1
    return result


def export_parquet(paths: Iterable[Path], out: Path, flt: Filter) -> ExportResult:
    """One row per kept record with the flat schema of ``trajectories.parquet``."""
    from agentd.trajectories.parquet import ParquetSink  # pyarrow is slow to import

    result = ExportResult()
    with atomic_output(out) as f, ParquetSink(f) as sink:
        for _, record in _kept(paths, flt, result):
            sink.add(record)
            result.written += 1
    return result


def export_srl(paths: Iterable[Path], out: Path, flt: Filter,
               tasks: TaskIndex | None = None) -> ExportResult:
    """SRL instances (JSONL) from every verified expert episode among the kept records."""
    result = ExportResult()
    records = (record for _, record in _kept(paths, flt, result))
    with atomic_output(out) as f:
        for steps in group_episodes(records):
            if not is_expert_episode(steps):
                continue
            task = tasks.get(steps[0].task_id) if tasks is not None else None
            for instance in episode_instances(steps, task):
                f.write(_encoder.encode(instance) + b"\n")
                result.written += 1
    return result


Exporter = Callable[[Iterable[Path], Path, Filter], ExportResult]
