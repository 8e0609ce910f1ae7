"""The trajectory writer: one task, fed by a bounded stream, writing batched JSONL shards.

::

    put(record) ──► bounded memory stream ──► run(): collect a batch (count | bytes | time)
                                                   ──► one write per shard (thread)
                                                   ──► fsync per policy ──► on_durable(records)

``put`` blocks when the stream is full, so a slow disk slows the episodes instead of growing
memory. ``on_durable`` is awaited once the records are as durable as ``config.fsync`` promises
(``always``: after an fsync of this batch; ``interval``: after the next periodic fsync;
``never``: after the write reached the kernel); the engine deletes them from its SQLite outbox
there. Records of one run are written in ``put`` order, which the outbox recovery relies on
(see ``last_record_key``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus

from agentd.config import WriterConfig
from agentd.errors import TrajectoryError
from agentd.logging import get_logger
from agentd.records import Key, TrajectoryRecord
from agentd.trajectories.reader import existing_keys, last_record_key
from agentd.trajectories.shards import ShardSet, check_run_id

__all__ = [
    "OnDurable", "TrajectorySink", "TrajectoryWriter", "WriterStatistics", "existing_keys",
    "last_record_key",
]

log = get_logger(__name__)

OnDurable = Callable[[list[TrajectoryRecord]], Awaitable[None]]
_SHUTDOWN_TIMEOUT_S = 30.0


class TrajectorySink(Protocol):
    """Where the episode runner sends finished steps."""

    async def put(self, record: TrajectoryRecord, encoded: bytes | None = None) -> None:
        """Queue one record (``encoded``: its JSON, when the caller already has it); waits
        while the sink is full."""
        ...


@dataclass(frozen=True)
class WriterStatistics:
    """A snapshot of the writer for ``agentd ctl status``."""

    records: int
    bytes: int
    batches: int
    writes: int
    fsyncs: int
    dir_fsyncs: int
    queue_depth: int
    queue_size: int
    shards: int
    rotations: int
    torn_lines_repaired: int
    pending_durable: int
    durable_records: int
    on_durable_errors: int
    last_flush_ms: float


class _Eof:
    """The send side was closed and the stream is drained."""


class _Tick:
    """A wait timed out: time to flush the batch or run the periodic fsync."""


_EOF, _TICK = _Eof(), _Tick()
_Entry = tuple[TrajectoryRecord, bytes | None]  # a record and its JSON when already encoded


@dataclass
class _Batch:
    records: list[TrajectoryRecord] = field(default_factory=list)
    lines: dict[str, list[bytes]] = field(default_factory=dict)
    nbytes: int = 0

    def add(self, record: TrajectoryRecord, line: bytes) -> None:
        self.records.append(record)
        self.lines.setdefault(record.run_id, []).append(line)
        self.nbytes += len(line)

    def full(self, config: WriterConfig) -> bool:
        return (len(self.records) >= config.batch_max_records
                or self.nbytes >= config.batch_max_bytes)


class TrajectoryWriter:
    """Batched, crash-safe JSONL writer for ``TrajectoryRecord``s under ``directory/<run_id>/``.

    Use ``async with TrajectoryWriter(...) as w: await w.put(r)``, or start ``run()`` in a task
    group and ``await close()`` at shutdown.
    """

    def __init__(self, directory: Path, config: WriterConfig, *,
                 on_durable: OnDurable | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` decides when an interval fsync is due (tests inject one)."""
        self.directory = directory
        self._clock = clock
        self.config = config
        self._on_durable = on_durable
        self._send, self._recv = anyio.create_memory_object_stream[_Entry](config.queue_size)
        self._shards = ShardSet(directory, config.rotate_bytes)
        self._encoder = msgspec.json.Encoder()
        # One file operation at a time, and never starved by other users of the thread pool.
        self._limiter = anyio.CapacityLimiter(1)
        self._pending: list[TrajectoryRecord] = []
        self._last_fsync = -math.inf
        self._eof = False
        self._started = False
        self._done = anyio.Event()
        self._tg: TaskGroup | None = None
        self._records = self._batches = self._durable = self._durable_errors = 0
        self._last_flush_ms = 0.0

    # ---------------------------------------------------------------- public API

    async def put(self, record: TrajectoryRecord, encoded: bytes | None = None) -> None:
        """Queue one record; waits while the queue is full (backpressure).

        ``encoded`` is the record's JSON when the caller has it already (the engine's outbox
        bytes): it goes to the shard as it is instead of being encoded a second time.
        """
        check_run_id(record.run_id)
        try:
            await self._send.send((record, encoded))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise TrajectoryError("trajectory writer is closed") from None

    async def prepare(self, run_id: str) -> Key | None:
        """Open a run's newest shard now (cutting a torn tail) and return its last key.

        The engine calls this at start, before replaying outbox rows that come after the key.
        Opening also happens lazily on the first ``put``; this makes the repair explicit.
        """
        run_dir = self.directory / check_run_id(run_id)

        def _open() -> Key | None:
            self._shards.ensure_open(run_id)
            return last_record_key(run_dir)

        return await anyio.to_thread.run_sync(_open, limiter=self._limiter)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The writer task: batches, writes and syncs until ``close()``; then drains.

        Start it with ``await task_group.start(writer.run)`` so that ``close()`` knows a
        writer task is there to drain the queue.
        """
        if self._done.is_set():
            task_status.started()
            return  # closed before it ever ran: close() already shut the files
        if self._started:
            raise RuntimeError("TrajectoryWriter.run() already started")
        self._started = True
        task_status.started()
        clean = False
        try:
            await self._loop()
            clean = True
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SHUTDOWN_TIMEOUT_S):
                await self._shutdown(report=clean)
            self._done.set()

    async def close(self) -> None:
        """Stop accepting records, write and fsync everything queued, close the shards."""
        self._send.close()
        if self._started:
            await self._done.wait()
            return
        # Never ran: whatever is queued was never written, so nothing is durable.
        self._started = True
        self._recv.close()
        await self._shutdown(report=False)
        self._done.set()

    def statistics(self) -> WriterStatistics:
        """Counters since start, plus the current queue depth."""
        c = self._shards.counters
        stream = self._send.statistics()
        return WriterStatistics(
            records=self._records, bytes=c.bytes, batches=self._batches, writes=c.writes,
            fsyncs=c.fsyncs, dir_fsyncs=c.dir_fsyncs,
            queue_depth=stream.current_buffer_used, queue_size=self.config.queue_size,
            shards=c.shards_opened, rotations=c.rotations,
            torn_lines_repaired=c.torn_lines_repaired, pending_durable=len(self._pending),
            durable_records=self._durable, on_durable_errors=self._durable_errors,
            last_flush_ms=self._last_flush_ms,
        )

    async def __aenter__(self) -> TrajectoryWriter:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.run)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        assert self._tg is not None
        if exc is None:
            await self.close()
        else:
            self._send.close()
        return await self._tg.__aexit__(exc_type, exc, tb)

    # ---------------------------------------------------------------- the loop

    async def _loop(self) -> None:
        async with self._recv:
            while not self._eof:
                batch = await self._collect()
                if batch.records:
                    await self._write(batch)
                await self._sync_if_due()

    async def _collect(self) -> _Batch:
        """Wait for a first record (or a fsync tick), then fill until full or flush time."""
        batch = _Batch()
        item = await self._receive(self._fsync_wait())
        if not isinstance(item, tuple):
            return batch
        self._add(batch, item)
        # Stop collecting when the flush is due, or earlier if pending records' fsync is.
        fsync_due = self._fsync_wait()
        wait = self.config.flush_interval_s if fsync_due is None else min(
            self.config.flush_interval_s, fsync_due)
        deadline = anyio.current_time() + wait
        while not batch.full(self.config):
            ready: _Entry | _Eof | _Tick | None = self._receive_nowait()
            if ready is None:
                ready = await self._receive(deadline - anyio.current_time())
            if not isinstance(ready, tuple):
                break
            self._add(batch, ready)
        return batch

    def _add(self, batch: _Batch, entry: _Entry) -> None:
        record, encoded = entry
        batch.add(record, (self._encoder.encode(record) if encoded is None else encoded) + b"\n")

    def _receive_nowait(self) -> _Entry | _Eof | None:
        try:
            return self._recv.receive_nowait()
        except anyio.WouldBlock:
            return None
        except anyio.EndOfStream:
            self._eof = True
            return _EOF

    async def _receive(self, wait_s: float | None) -> _Entry | _Eof | _Tick:
        # A bounded wait, not a timeout on the caller: running out is the normal flush signal.
        if wait_s is not None and wait_s <= 0:
            return _TICK
        with anyio.move_on_after(wait_s):
            try:
                return await self._recv.receive()
            except anyio.EndOfStream:
                self._eof = True
                return _EOF
        return _TICK

    def _fsync_wait(self) -> float | None:
        """How long the loop may sleep before pending records are due for their fsync."""
        if not self._pending:
            return None
        return max(0.0, self._last_fsync + self.config.fsync_interval_s - self._clock())

    async def _write(self, batch: _Batch) -> None:
        started = time.perf_counter()
        always = self.config.fsync == "always"
        await anyio.to_thread.run_sync(self._write_sync, batch, always, limiter=self._limiter)
        self._records += len(batch.records)
        self._batches += 1
        self._last_flush_ms = (time.perf_counter() - started) * 1000
        self._pending.extend(batch.records)
        if always:
            self._last_fsync = self._clock()
        if self.config.fsync != "interval":
            await self._report_durable()

    def _write_sync(self, batch: _Batch, fsync: bool) -> None:
        for run_id, lines in batch.lines.items():
            self._shards.append(run_id, lines)
        if fsync:
            self._shards.fsync_dirty()

    async def _sync_if_due(self) -> None:
        if self.config.fsync != "interval" or not self._pending:
            return
        overdue = self._clock() - self._last_fsync >= self.config.fsync_interval_s
        # Bound what waits for durability even when records arrive faster than the interval.
        if overdue or len(self._pending) >= 16 * self.config.batch_max_records:
            await anyio.to_thread.run_sync(self._shards.fsync_dirty, limiter=self._limiter)
            self._last_fsync = self._clock()
            await self._report_durable()

    async def _report_durable(self) -> None:
        records, self._pending = self._pending, []
        if not records:
            return
        self._durable += len(records)
        if self._on_durable is None:
            return
        try:
            await self._on_durable(records)
        except Exception as exc:
            # The records are safe on disk; a failed outbox delete only means the recovery
            # scan skips them later by key. Keep writing.
            self._durable_errors += 1
            log.error("trajectories.on_durable_failed", error=f"{type(exc).__name__}: {exc}",
                      records=len(records))

    async def _shutdown(self, *, report: bool) -> None:
        """fsync and close every shard; tell ``on_durable`` unless we are being cancelled."""
        await anyio.to_thread.run_sync(self._shards.close, limiter=self._limiter)
        if report:
            await self._report_durable()
        log.info("trajectories.writer_closed", records=self._records, batches=self._batches,
                 fsyncs=self._shards.counters.fsyncs, unreported=len(self._pending))
