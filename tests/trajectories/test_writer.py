"""TrajectoryWriter: batching, flushing, rotation, fsync policies, durability, order, repair."""

from __future__ import annotations

import errno
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from agentd.errors import TrajectoryError
from agentd.records import TrajectoryRecord
from agentd.testing.clock import FakeClock
from agentd.trajectories import TrajectoryWriter, WriterStatistics
from agentd.trajectories.shards import plan_chunks

from .helpers import read_lines, shard_keys, shard_paths, write_records, writer_config

Factory = Callable[..., TrajectoryRecord]


async def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll until ``predicate`` holds; the timeout only catches a writer that is stuck."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


def _records(make_record: Factory, n: int, run_id: str = "run-1", **kw: object) -> list[
        TrajectoryRecord]:
    return [make_record(run_id, f"task-{i // 4}", 0, i % 4, **kw) for i in range(n)]


class TestBatching:
    async def test_each_batch_is_one_write_of_whole_lines(
        self, tmp_path: Path, make_record: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """35 records with batches of 10 reach the file as 4 writes: 10, 10, 10 and 5 lines."""
        writes: list[bytes] = []
        real_write = os.write

        def spy(fd: int, data: bytes | memoryview) -> int:
            if bytes(data[:10]) == b'{"run_id":':
                writes.append(bytes(data))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", spy)
        async with TrajectoryWriter(tmp_path, writer_config(batch_max_records=10)) as w:
            for r in _records(make_record, 35):
                await w.put(r)
        assert [chunk.count(b"\n") for chunk in writes] == [10, 10, 10, 5]
        assert all(chunk.endswith(b"\n") for chunk in writes)
        stats = w.statistics()
        assert (stats.batches, stats.writes, stats.records) == (4, 4, 35)

    async def test_flushes_by_time_without_closing(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A partial batch is written once flush_interval_s has passed, the writer still open."""
        async with TrajectoryWriter(tmp_path, writer_config(flush_interval_s=0.05)) as w:
            for r in _records(make_record, 3):
                await w.put(r)
            # The writer counts a batch after its write returns: wait on the count, not on the
            # file, or the check can land between the two. How many batches the three make
            # depends on how the puts and the interval interleave, so only the lines count.
            await _wait_for(lambda: w.statistics().records == 3)
            assert 1 <= w.statistics().batches <= 3
            assert len(read_lines(tmp_path / "run-1" / "part-000000.jsonl")) == 3

    async def test_waits_for_more_records_until_the_interval(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Before the flush interval a small batch stays in memory; close() writes it."""
        async with TrajectoryWriter(tmp_path, writer_config(flush_interval_s=30)) as w:
            for r in _records(make_record, 3):
                await w.put(r)
            await _wait_for(lambda: w.statistics().queue_depth == 0)  # all three in the batch
            assert w.statistics().records == 0
        assert len(read_lines(tmp_path / "run-1" / "part-000000.jsonl")) == 3

    async def test_flushes_by_size(self, tmp_path: Path, make_record: Factory) -> None:
        """Records bigger than batch_max_bytes are written at once, not after the interval."""
        config = writer_config(batch_max_bytes=1024, flush_interval_s=30)
        async with TrajectoryWriter(tmp_path, config) as w:
            for r in _records(make_record, 4):
                await w.put(r)
            await _wait_for(lambda: w.statistics().records == 4)
            assert w.statistics().batches == 4


class TestRotation:
    async def test_rotates_by_size_into_numbered_shards(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Shards stay under rotate_bytes, are numbered in order and hold every record once."""
        records = _records(make_record, 30, prompt_bytes=200)
        config = writer_config(rotate_bytes=4096, batch_max_records=7)
        async with TrajectoryWriter(tmp_path, config) as w:
            for r in records:
                await w.put(r)
        shards = shard_paths(tmp_path / "run-1")
        assert len(shards) > 5
        assert [p.name for p in shards] == [f"part-{i:06d}.jsonl" for i in range(len(shards))]
        assert all(p.stat().st_size <= 4096 for p in shards)
        assert shard_keys(tmp_path / "run-1") == [r.key for r in records]
        stats = w.statistics()
        assert stats.rotations == len(shards) - 1
        assert stats.dir_fsyncs == len(shards)  # every new shard's name made durable

    async def test_a_line_bigger_than_a_shard_gets_its_own(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """An oversized record is written whole into a fresh shard rather than refused."""
        small = make_record(step=0, prompt_bytes=100)
        big = make_record(step=1, prompt_bytes=10_000)
        async with TrajectoryWriter(tmp_path, writer_config(rotate_bytes=4096)) as w:
            for r in (small, big, make_record(step=2, prompt_bytes=100)):
                await w.put(r)
        sizes = [len(read_lines(p)) for p in shard_paths(tmp_path / "run-1")]
        assert sizes == [1, 1, 1]

    def test_plan_chunks_never_splits_a_line(self) -> None:
        """Planned chunks concatenate back to the input and rotate only at line boundaries."""
        rng = random.Random(3)
        lines = [b"x" * rng.randint(1, 900) + b"\n" for _ in range(200)]
        chunks = plan_chunks(lines, 700, 2000)
        assert b"".join(data for _, data in chunks) == b"".join(lines)
        used = 700
        for rotate, data in chunks:
            assert data.endswith(b"\n")
            used = len(data) if rotate else used + len(data)
            assert used <= 2000
        assert all(rotate for rotate, _ in chunks[1:])

    async def test_reopen_appends_to_the_newest_shard(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A second writer continues the newest shard and keeps the order across restarts."""
        records = _records(make_record, 8)
        for half in (records[:4], records[4:]):
            async with TrajectoryWriter(tmp_path, writer_config()) as w:
                for r in half:
                    await w.put(r)
        assert [p.name for p in shard_paths(tmp_path / "run-1")] == ["part-000000.jsonl"]
        assert shard_keys(tmp_path / "run-1") == [r.key for r in records]


class TestFsyncPolicy:
    async def test_always_fsyncs_every_batch(self, tmp_path: Path, make_record: Factory) -> None:
        """fsync: always syncs once per batch, before anything is reported durable."""
        config = writer_config(fsync="always", batch_max_records=5)
        async with TrajectoryWriter(tmp_path, config) as w:
            for r in _records(make_record, 20):
                await w.put(r)
        stats = w.statistics()
        assert stats.batches == 4
        assert stats.fsyncs == 4

    async def test_never_syncs_only_at_shutdown(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """fsync: never writes without syncing; close() still syncs the open shard."""
        config = writer_config(flush_interval_s=0.01)
        async with TrajectoryWriter(tmp_path, config) as w:
            for r in _records(make_record, 10):
                await w.put(r)
            await _wait_for(lambda: w.statistics().records == 10)
            assert w.statistics().fsyncs == 0
        assert w.statistics().fsyncs == 1

    async def test_interval_syncs_at_most_once_per_interval(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """fsync: interval syncs a steady stream once per interval, far fewer than it writes.

        One record per 1/64 s of (injected) time, a 1/4 s interval: the first write syncs,
        then every 16th.
        """
        clock = FakeClock()
        config = writer_config(fsync="interval", fsync_interval_s=0.25, flush_interval_s=0.001)
        async with TrajectoryWriter(tmp_path, config, clock=clock) as w:
            for i, r in enumerate(_records(make_record, 60)):
                await w.put(r)
                await _wait_for(lambda n=i + 1: w.statistics().records == n)
                clock.advance(1 / 64)
            during = w.statistics()
        assert during.batches == 60
        assert during.fsyncs == 4  # at records 0, 16, 32 and 48

    async def test_interval_syncs_pending_records_without_new_writes(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A record written just after a sync becomes durable one interval later, unprompted."""
        durable: list[int] = []

        async def on_durable(batch: list[TrajectoryRecord]) -> None:
            durable.extend(r.step for r in batch)

        clock = FakeClock()
        config = writer_config(fsync="interval", fsync_interval_s=0.3, flush_interval_s=0.01)
        async with TrajectoryWriter(tmp_path, config, on_durable=on_durable, clock=clock) as w:
            await w.put(make_record(step=0))
            await _wait_for(lambda: durable == [0])
            await w.put(make_record(step=1))
            await _wait_for(lambda: w.statistics().records == 2)
            assert durable == [0] and w.statistics().fsyncs == 1  # written, not yet due
            clock.advance(0.5)  # past the interval: the next wake-up syncs, with no new write
            await _wait_for(lambda: durable == [0, 1])
            assert w.statistics().fsyncs == 2


class TestDurability:
    async def test_on_durable_follows_the_fsync(
        self, tmp_path: Path, make_record: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With fsync always, every on_durable call comes after the fsync of its records."""
        events: list[str] = []
        real_fsync = os.fsync

        def spy(fd: int) -> None:
            real_fsync(fd)
            events.append("fsync")

        async def on_durable(batch: list[TrajectoryRecord]) -> None:
            shard = tmp_path / "run-1" / "part-000000.jsonl"
            on_disk = {msgspec.json.decode(x, type=TrajectoryRecord).key
                       for x in read_lines(shard)}
            assert {r.key for r in batch} <= on_disk
            events.append(f"durable:{len(batch)}")

        monkeypatch.setattr(os, "fsync", spy)
        config = writer_config(fsync="always", batch_max_records=4)
        async with TrajectoryWriter(tmp_path, config, on_durable=on_durable) as w:
            for r in _records(make_record, 12):
                await w.put(r)
        durable_at = [i for i, e in enumerate(events) if e.startswith("durable")]
        assert [events[i] for i in durable_at] == ["durable:4"] * 3
        assert all(events[i - 1] == "fsync" for i in durable_at)

    @pytest.mark.parametrize("policy", ["always", "interval", "never"])
    async def test_every_record_is_reported_exactly_once(
        self, tmp_path: Path, make_record: Factory, policy: str
    ) -> None:
        """Whatever the policy, on_durable sees each record once, in put order."""
        seen: list[tuple[str, str, int, int]] = []

        async def on_durable(batch: list[TrajectoryRecord]) -> None:
            seen.extend(r.key for r in batch)

        config = writer_config(fsync=policy, batch_max_records=3, flush_interval_s=0.01)
        records = _records(make_record, 20)
        async with TrajectoryWriter(tmp_path, config, on_durable=on_durable) as w:
            for r in records:
                await w.put(r)
        assert seen == [r.key for r in records]

    async def test_a_failing_callback_does_not_stop_the_writer(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """on_durable errors are counted and logged; writing goes on."""

        async def on_durable(batch: list[TrajectoryRecord]) -> None:
            raise RuntimeError("outbox is gone")

        config = writer_config(fsync="always", batch_max_records=2)
        async with TrajectoryWriter(tmp_path, config, on_durable=on_durable) as w:
            for r in _records(make_record, 6):
                await w.put(r)
        stats = w.statistics()
        assert (stats.records, stats.on_durable_errors) == (6, 3)
        assert len(read_lines(tmp_path / "run-1" / "part-000000.jsonl")) == 6


class TestOrderAndBackpressure:
    async def test_preserves_put_order_per_run(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Interleaved runs from concurrent producers land in each run's put order."""
        per_run = {f"run-{k}": _records(make_record, 40, run_id=f"run-{k}") for k in range(3)}

        async def produce(w: TrajectoryWriter, records: list[TrajectoryRecord]) -> None:
            for r in records:
                await w.put(r)
                await anyio.sleep(0)

        config = writer_config(batch_max_records=7, flush_interval_s=0.005)
        async with TrajectoryWriter(tmp_path, config) as w, anyio.create_task_group() as tg:
            for records in per_run.values():
                tg.start_soon(produce, w, records)
        for run_id, records in per_run.items():
            assert shard_keys(tmp_path / run_id) == [r.key for r in records]

    async def test_put_waits_when_the_queue_is_full(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """With no writer running, the third put into a queue of two blocks."""
        w = TrajectoryWriter(tmp_path, writer_config(queue_size=2))
        put = 0
        with anyio.move_on_after(0.2) as scope:
            for r in _records(make_record, 3):
                await w.put(r)
                put += 1
        assert scope.cancelled_caught
        assert put == 2
        assert w.statistics().queue_depth == 2
        await w.close()

    async def test_close_before_run_is_clean(self, tmp_path: Path, make_record: Factory) -> None:
        """close() before the writer task started leaves run() nothing to do."""
        w = TrajectoryWriter(tmp_path, writer_config())
        await w.close()
        await w.run()
        with pytest.raises(TrajectoryError):
            await w.put(make_record())

    async def test_put_after_close_raises(self, tmp_path: Path, make_record: Factory) -> None:
        """A closed writer refuses records with TrajectoryError."""
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            pass
        with pytest.raises(TrajectoryError, match="closed"):
            await w.put(make_record())

    async def test_unsafe_run_id_is_refused(self, tmp_path: Path, make_record: Factory) -> None:
        """A run id that would escape the directory never reaches the file system."""
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            with pytest.raises(TrajectoryError, match="run_id"):
                await w.put(make_record(run_id="../escape"))

    async def test_statistics_is_a_frozen_snapshot(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """statistics() reports records, bytes, batches and shards as a frozen dataclass."""
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            await w.put(make_record())
        stats = w.statistics()
        assert isinstance(stats, WriterStatistics)
        assert stats.records == 1
        assert stats.bytes == (tmp_path / "run-1" / "part-000000.jsonl").stat().st_size
        assert (stats.shards, stats.queue_depth, stats.pending_durable) == (1, 0, 0)
        assert stats.last_flush_ms > 0
        with pytest.raises(AttributeError):
            stats.records = 2  # type: ignore[misc]


class TestWriteFailure:
    async def test_a_failed_write_is_cut_back_and_stops_the_writer(
        self, tmp_path: Path, make_record: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Disk full halfway through a batch: the half is truncated away and run() raises."""
        real_write = os.write
        calls = 0

        def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
            nonlocal calls
            if calls < 2 and bytes(data[:10]) != b'{"run_id":':
                return real_write(fd, data)
            calls += 1  # after the short write, the writer's retry of the rest fails
            if calls == 1:
                return real_write(fd, data)
            if calls == 2:
                return real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_enospc)
        with pytest.raises(ExceptionGroup) as info:
            async with TrajectoryWriter(tmp_path, writer_config(batch_max_records=2)) as w:
                for r in _records(make_record, 4):
                    await w.put(r)
                with anyio.fail_after(60):  # the writer's failure cancels this wait
                    await anyio.sleep_forever()
        assert info.group_contains(TrajectoryError, match="No space left")
        assert [k[3] for k in shard_keys(tmp_path / "run-1")] == [0, 1]
        with pytest.raises(TrajectoryError, match="closed"):
            await w.put(make_record())


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(record.getMessage())


class TestTornLineRepair:
    async def test_partial_last_line_is_cut_back_and_logged(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """Garbage after the last newline (a crash mid-write) is truncated when a writer opens."""
        shard = tmp_path / "run-1" / "part-000000.jsonl"
        write_records(shard, [make_record(step=0)], tail=b'{"run_id":"run-1","task_')
        handler = _ListHandler()
        logger = logging.getLogger("agentd.trajectories.shards")
        logger.addHandler(handler)
        try:
            async with TrajectoryWriter(tmp_path, writer_config()) as w:
                await w.put(make_record(step=1))
        finally:
            logger.removeHandler(handler)
        assert [k[3] for k in shard_keys(tmp_path / "run-1")] == [0, 1]
        assert w.statistics().torn_lines_repaired == 1
        assert "trajectories.torn_line_repaired" in handler.events

    async def test_a_shard_with_no_newline_at_all_is_emptied(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A shard that holds only a fragment is cut to zero bytes, then written normally."""
        shard = tmp_path / "run-1" / "part-000000.jsonl"
        shard.parent.mkdir(parents=True)
        shard.write_bytes(b'{"run_id": "ru')
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            await w.put(make_record(step=0))
        assert [k[3] for k in shard_keys(tmp_path / "run-1")] == [0]

    async def test_intact_shards_are_left_alone(
        self, tmp_path: Path, make_record: Factory
    ) -> None:
        """A shard ending in a newline is not touched and nothing is counted as repaired."""
        shard = tmp_path / "run-1" / "part-000000.jsonl"
        write_records(shard, [make_record(step=0)])
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            await w.put(make_record(step=1))
        assert w.statistics().torn_lines_repaired == 0
