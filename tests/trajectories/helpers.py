"""Helpers shared by the trajectory tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from agentd.config import WriterConfig
from agentd.records import TrajectoryRecord


def writer_config(**overrides: Any) -> WriterConfig:
    """Defaults made for tests: fsync never and a long flush interval, unless overridden."""
    base: dict[str, Any] = {"fsync": "never", "flush_interval_s": 5.0}
    return WriterConfig(**{**base, **overrides})


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def shard_paths(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("part-*.jsonl"))


def shard_keys(run_dir: Path) -> list[tuple[str, str, int, int]]:
    """Keys of every line of every shard, in file order."""
    keys = []
    for shard in shard_paths(run_dir):
        for line in read_lines(shard):
            keys.append(msgspec.json.decode(line, type=TrajectoryRecord).key)
    return keys


def write_records(path: Path, records: list[TrajectoryRecord], tail: bytes = b"") -> None:
    """A shard written directly (no writer), optionally followed by raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(msgspec.json.encode(r) + b"\n" for r in records)
    path.write_bytes(body + tail)
