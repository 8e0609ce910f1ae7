"""Task files: ``data/processed/<split>/tasks.jsonl``, one msgspec-encoded Task per line."""

from __future__ import annotations

import hashlib
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


MAX_TASK_LINE = 16 * 1024 * 1024  # a task is ~50 KB; a line past this is not one


def tasks_path(settings: Settings, split: str) -> Path:
    """Where the tasks of ``split`` live."""
    return settings.path(settings.agentd.paths.processed_data) / split / TASKS_FILE


def corpus_version(processed: Path, splits: Iterable[str] = ("train", "dev", "test")) -> str:
    """A short content hash of the split files under ``processed`` ("" when there are none).

    The build is deterministic, so the same sources and build config give the same version;
    it is recorded in ``stats.json`` and in every trajectory record's provenance, which is
    how a run is traced back to its data (and, through dvc.lock, to the sources)."""
    digest = hashlib.sha256()
    found = False
    for split in sorted(splits):
        path = processed / split / TASKS_FILE
        if not path.is_file():
            continue
        found = True
        file_digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                file_digest.update(chunk)
        digest.update(f"{split}\0{file_digest.hexdigest()}\n".encode())
    return digest.hexdigest()[:16] if found else ""


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
        lineno = 0
        while line := fh.readline(MAX_TASK_LINE + 1):  # bounded: no newline is no 4 GiB line
            lineno += 1
            if len(line) > MAX_TASK_LINE:
                raise DatasetError(f"{path}:{lineno}: a task line over {MAX_TASK_LINE} bytes")
            if not line.strip():
                continue
            try:
                yield _decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: invalid task: {exc}") from None
