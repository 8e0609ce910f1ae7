"""Exactly-once step commits: SQLite is the truth, the JSONL shards follow it.

A step is *acknowledged* when one transaction has saved its state (compare-and-swap), advanced
its queue row (fenced by the lease id) and put its trajectory record into the ``outbox``.
The record then goes to the writer under the same lock, so shards follow commit order; the
writer's durability callback deletes outbox rows. After a crash ``recover()`` cuts a torn last
line, finds the last record that reached each run's shard, drops the outbox rows up to it and
returns the rest, in commit order, to be written again — none lost, none twice.
"""

from __future__ import annotations

import aiosqlite
import anyio
import msgspec

from agentd.engine.queue import Spend, TaskQueue
from agentd.episode.lease import Lease
from agentd.errors import AgentdError, TrajectoryError
from agentd.logging import get_logger
from agentd.records import TrajectoryRecord
from agentd.state import State, StateStore
from agentd.trajectories import TrajectorySink, TrajectoryWriter
from agentd.trajectories.shards import check_run_id

log = get_logger(__name__)
_record_decoder = msgspec.json.Decoder(TrajectoryRecord)
_record_encoder = msgspec.json.Encoder()


class LeaseLostError(AgentdError):
    """The queue row is no longer ours (the watchdog requeued it); the step was not committed."""


class StepCommitter:
    """Commits steps atomically and reconciles the outbox with the shards."""

    def __init__(self, store: StateStore, queue: TaskQueue) -> None:
        self.store = store
        self.queue = queue
        self.sink: TrajectorySink | None = None
        self.poisoned = 0  # outbox rows the last recovery had to skip
        self._lock = anyio.Lock()

    async def commit(self, lease: Lease, step: int, state: State, version: int,
                     record: TrajectoryRecord, files: dict[str, str], done: bool) -> Spend:
        """State, queue progress, the run's spend and the outbox row in one transaction, then
        to the writer; returns what the run has spent, this step included."""
        assert self.sink is not None
        async with self._lock:
            # Once started, a commit finishes: cancelling half-way would only roll it back.
            with anyio.CancelScope(shield=True):
                async with self.store.transaction() as db:
                    await self.store.save_in(db, lease.run_id, lease.task_id, lease.episode,
                                             state, version)
                    await db.execute(
                        "INSERT INTO outbox(run_id, task_id, episode, step, record)"
                        " VALUES (?, ?, ?, ?, ?)", (*record.key, _record_encoder.encode(record)))
                    if not await self.queue.advance_in(db, lease, step=step, files=files,
                                                       done=done):
                        raise LeaseLostError(f"lost the lease of {lease.group}")
                    if done:
                        await self.queue.record_result_in(
                            db, lease, final_match=record.reward.final_match, steps=step + 1)
                    spend = await self.queue.charge_in(db, record.run_id, record.usage)
            await self.sink.put(record)
        return spend

    async def on_durable(self, records: list[TrajectoryRecord]) -> None:
        """The writer made these durable: they leave the outbox."""
        async with self.store.transaction() as db:
            await db.executemany(
                "DELETE FROM outbox WHERE run_id=? AND task_id=? AND episode=? AND step=?",
                [r.key for r in records])

    async def recover(self, writer: TrajectoryWriter) -> list[TrajectoryRecord]:
        """Drop outbox rows already in the shards; return the rest in commit order. A row
        that cannot be replayed (an unsafe run id, an undecodable record) is skipped and
        reported (``poisoned``), never a reason to refuse to start."""
        pending: list[TrajectoryRecord] = []
        self.poisoned = 0
        async with self.store.transaction() as db:
            cur = await db.execute("SELECT DISTINCT run_id FROM outbox")
            for (run_id,) in list(await cur.fetchall()):
                try:
                    pending += await self._recover_run(db, writer, check_run_id(str(run_id)))
                except TrajectoryError as exc:
                    cur = await db.execute("SELECT COUNT(*) FROM outbox WHERE run_id=?",
                                           (run_id,))
                    (rows,) = await cur.fetchone() or (0,)
                    self.poisoned += rows
                    log.error("recovery.outbox_skipped", run_id=repr(run_id)[:200],
                              rows=rows, error=str(exc)[:200])
        return pending

    async def _recover_run(self, db: aiosqlite.Connection, writer: TrajectoryWriter,
                           run_id: str) -> list[TrajectoryRecord]:
        # prepare() cuts a torn last line and returns the last whole record's key.
        key = await writer.prepare(run_id)
        if key is not None:
            await db.execute(
                "DELETE FROM outbox WHERE run_id=? AND seq <= (SELECT seq FROM outbox"
                " WHERE run_id=? AND task_id=? AND episode=? AND step=?)",
                (run_id, *key))
        cur = await db.execute("SELECT seq, record FROM outbox WHERE run_id=? ORDER BY seq",
                               (run_id,))
        out: list[TrajectoryRecord] = []
        for seq, raw in await cur.fetchall():
            try:
                out.append(_record_decoder.decode(raw))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.poisoned += 1
                log.error("recovery.outbox_row_skipped", run_id=run_id, seq=seq,
                          error=str(exc)[:200])
        return out
