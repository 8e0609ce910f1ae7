"""Task files: ``data/processed/<split>/tasks.jsonl``, one msgspec-encoded Task per line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from agentd.config import Settings
from agentd.errors import DatasetError
from agentd.fileio import atomic_output
from agentd.records import Task

TASKS_FILE = "tasks.jsonl"
STATS_FILE = "stats.json"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Task)


def tasks_path(settings: Settings, split: str) -> Path:
    """Where the tasks of ``split`` live."""
    return settings.path(settings.agentd.paths.processed_data) / split / TASKS_FILE


def write_tasks(path: Path, tasks: Iterable[Task]) -> int:
    """Write ``tasks`` atomically (temp file, fsync, rename); returns how many."""
    n = 0
    with atomic_output(path) as fh:
        for task in tasks:
            fh.write(_encoder.encode(task) + b"\n")
            n += 1
    return n


def load_tasks(path: Path) -> Iterator[Task]:
    """Stream the tasks of one ``tasks.jsonl``; a bad line is a DatasetError naming it."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no tasks (run `agentd data build`)") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: invalid task: {exc}") from None
