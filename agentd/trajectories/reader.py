"""Streaming reads of trajectory shards: one line at a time, never a whole file in memory.

``iter_records`` is what verify, stats, export and the reports build on: it yields
``(path, line_number, record_or_error)`` so a caller decides what a bad line means. A torn
last line (no ``\\n``: a crash mid-write that the writer has not repaired yet) is reported as
``TornLineError``; a complete line that does not decode is a ``SchemaError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from agentd.errors import TrajectoryError, UsageError
from agentd.records import SCHEMA_VERSION, Key, TrajectoryRecord
from agentd.trajectories.shards import SHARD_RE, last_newline_end, list_shards

_decoder = msgspec.json.Decoder(TrajectoryRecord)
_MAX_REASON = 200


class TornLineError(TrajectoryError):
    """The file's last line has no terminating newline."""


class SchemaError(TrajectoryError):
    """A complete line is not valid JSON or not a valid ``TrajectoryRecord``."""


class _KeyOnly(msgspec.Struct):
    """Just the unique key: decoding four fields is much cheaper than the whole record."""

    run_id: str
    task_id: str
    episode: int
    step: int

    @property
    def key(self) -> Key:
        return (self.run_id, self.task_id, self.episode, self.step)


_key_decoder = msgspec.json.Decoder(_KeyOnly)


def _sort_key(path: Path) -> tuple[str, int, str]:
    # Shards sort by their numeric index, so part-1000000 follows part-999999.
    m = SHARD_RE.match(path.name)
    return (str(path.parent), int(m.group(1)) if m else -1, path.name)


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and ``*.jsonl`` under directories (recursive, in shard order)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.jsonl"), key=_sort_key)
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{path}: no such file or directory")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line_number, bytes, complete)`` for each line; only the last can be incomplete."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            complete = line.endswith(b"\n")
            yield number, line[:-1] if complete else line, complete


def decode_record(line: bytes) -> TrajectoryRecord:
    """Decode and check one line; raises ``SchemaError`` with a short reason."""
    if not line.strip():
        raise SchemaError("empty line")
    try:
        record = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        raise SchemaError(f"invalid record: {str(exc)[:_MAX_REASON]}") from None
    except msgspec.DecodeError as exc:
        raise SchemaError(f"invalid JSON: {str(exc)[:_MAX_REASON]}") from None
    if record.schema_version != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema_version {record.schema_version}")
    return record


def iter_records(
    paths: Iterable[Path],
) -> Iterator[tuple[Path, int, TrajectoryRecord | TrajectoryError]]:
    """Every line of every file as a record, or the ``TrajectoryError`` that says why not."""
    for path in iter_files(paths):
        for number, line, complete in iter_lines(path):
            if not complete:
                yield path, number, TornLineError(f"torn last line ({len(line)} bytes, no newline)")
                continue
            try:
                yield path, number, decode_record(line)
            except SchemaError as exc:
                yield path, number, exc


def _last_complete_line(path: Path) -> bytes | None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = last_newline_end(fd, os.fstat(fd).st_size)
        if end == 0:
            return None
        start = last_newline_end(fd, end - 1)
        return os.pread(fd, end - 1 - start, start)
    finally:
        os.close(fd)


def last_record_key(run_dir: Path) -> Key | None:
    """The key of the last complete record of the newest non-empty shard (None: no records).

    The engine's outbox recovery re-writes the outbox rows that come after this key. The
    writer keeps ``put`` order within a run, so everything up to this key is on disk.
    """
    for _, path in reversed(list_shards(run_dir)):
        line = _last_complete_line(path)
        if line is None:
            continue
        try:
            return _key_decoder.decode(line).key
        except msgspec.MsgspecError as exc:
            raise TrajectoryError(f"{path}: last complete line is not a record: {exc}") from None
    return None


def existing_keys(run_dir: Path) -> set[Key]:
    """Keys of every complete, decodable record in a run directory (a full scan)."""
    keys: set[Key] = set()
    for _, path in list_shards(run_dir):
        for _, line, complete in iter_lines(path):
            if not complete:
                continue
            try:
                keys.add(_key_decoder.decode(line).key)
            except msgspec.MsgspecError:
                continue
    return keys
