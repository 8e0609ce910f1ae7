"""The sandbox step log: one JSON line per action in ``logs/sandbox/<task_id>.jsonl``.

Lines carry the argv, the limits, a result summary and timings — never the environment (the
jail has none) and never file contents. Files rotate by size (``.1`` … ``.N``). Writes run in a
worker thread so the event loop never waits on the disk; a failed write is logged at debug
and dropped (the step log is best-effort, the trajectory is the record).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import msgspec

from agentd.logging import get_logger
from agentd.sandbox.workspace import safe_name

log = get_logger(__name__)
_encoder = msgspec.json.Encoder()


class StepJournal:
    """Appends step records to per-task JSONL files with size-based rotation."""

    def __init__(self, log_dir: Path, *, max_bytes: int, backups: int) -> None:
        self.log_dir = log_dir
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def path_for(self, task_id: str) -> Path:
        """The log file of ``task_id`` (sanitised for the file system)."""
        return self.log_dir / f"{safe_name(task_id)}.jsonl"

    async def write(self, task_id: str, record: dict[str, Any]) -> None:
        """Append ``record`` as one line; never raises."""
        line = _encoder.encode(record) + b"\n"
        try:
            await anyio.to_thread.run_sync(self._append, task_id, line)
        except OSError as exc:
            log.debug("sandbox.journal_failed", error=str(exc))

    def _append(self, task_id: str, line: bytes) -> None:
        path = self.path_for(task_id)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size + len(line) > self.max_bytes:
                self._rotate(path)
            with path.open("ab") as fh:
                fh.write(line)

    def _rotate(self, path: Path) -> None:
        if self.backups == 0:
            path.unlink()
            return
        for i in range(self.backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{i + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))
