"""Streaming reads: iter_records, last_record_key, existing_keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentd.errors import TrajectoryError, UsageError
from agentd.records import TrajectoryRecord
from agentd.trajectories import (
    SchemaError,
    TornLineError,
    existing_keys,
    iter_records,
    last_record_key,
)

from .helpers import write_records

Factory = Callable[..., TrajectoryRecord]


class TestIterRecords:
    def test_yields_records_and_errors_with_line_numbers(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Good lines are records; a bad line is a SchemaError; a torn tail a TornLineError."""
        shard = tmp_path / "r" / "part-000000.jsonl"
        write_records(shard, [make_record(step=0)], tail=b'{"nope": 1}\n{"run_id"')
        items = list(iter_records([tmp_path]))
        assert [(p, n) for p, n, _ in items] == [(shard, 1), (shard, 2), (shard, 3)]
        assert isinstance(items[0][2], TrajectoryRecord)
        assert isinstance(items[1][2], SchemaError)
        assert isinstance(items[2][2], TornLineError)

    def test_reads_shards_in_numeric_order_across_files_and_dirs(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Directories are searched recursively and shards come in index order."""
        for index in (10, 2, 1):
            write_records(tmp_path / "r" / f"part-{index:06d}.jsonl", [make_record(step=index)])
        loose = tmp_path / "loose.jsonl"
        write_records(loose, [make_record(step=99)])
        steps = [i[2].step for i in iter_records([tmp_path / "r", loose])
                 if isinstance(i[2], TrajectoryRecord)]
        assert steps == [1, 2, 10, 99]

    def test_a_newer_schema_version_is_a_schema_error(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Records from a future schema are not silently misread."""
        write_records(tmp_path / "a.jsonl", [make_record(schema_version=99)])
        [(_, _, item)] = list(iter_records([tmp_path]))
        assert isinstance(item, SchemaError)
        assert "schema_version" in str(item)

    def test_missing_path_is_a_usage_error(self, tmp_path: Path) -> None:
        """A path that does not exist is the user's mistake, not a crash."""
        with pytest.raises(UsageError):
            list(iter_records([tmp_path / "absent"]))


class TestKeys:
    def test_last_record_key_ignores_a_torn_tail(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """The key is the last complete line's, even with a partial line after it."""
        run = tmp_path / "run-1"
        write_records(run / "part-000000.jsonl", [make_record(step=0)])
        write_records(run / "part-000001.jsonl", [make_record(step=1), make_record(step=2)],
                      tail=b'{"run_id":"run-1","ta')
        assert last_record_key(run) == ("run-1", "task-0001", 0, 2)

    def test_last_record_key_skips_empty_newest_shards(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A shard created just before a crash (empty or only torn) falls back to the previous."""
        run = tmp_path / "run-1"
        write_records(run / "part-000000.jsonl", [make_record(step=4)])
        (run / "part-000001.jsonl").write_bytes(b'{"torn')
        assert last_record_key(run) == ("run-1", "task-0001", 0, 4)

    def test_no_records_is_none(self, tmp_path: Path) -> None:
        """A missing or empty run directory has no last key."""
        assert last_record_key(tmp_path / "nothing") is None

    def test_a_corrupt_last_line_raises(self, tmp_path: Path) -> None:
        """A complete last line that is not a record is reported, not guessed around."""
        run = tmp_path / "run-1"
        run.mkdir()
        (run / "part-000000.jsonl").write_bytes(b"not json\n")
        with pytest.raises(TrajectoryError, match="part-000000"):
            last_record_key(run)

    def test_existing_keys_scans_every_shard(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Every complete record's key, across shards; torn and bad lines are left out."""
        run = tmp_path / "run-1"
        write_records(run / "part-000000.jsonl", [make_record(step=0)], tail=b"garbage\n")
        write_records(run / "part-000001.jsonl", [make_record(step=1)], tail=b'{"x')
        assert existing_keys(run) == {("run-1", "task-0001", 0, 0), ("run-1", "task-0001", 0, 1)}
