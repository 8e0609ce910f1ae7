"""Exactly-once step commits: SQLite is the truth, the JSONL shards follow it.

A step is *acknowledged* when one transaction has saved its state (compare-and-swap), advanced
its queue row (fenced by the lease id) and put its trajectory record into the ``outbox``.
The record is encoded once; the same bytes then go to the writer under the same lock, so
shards follow commit order, and the writer's durability callback (``Outbox.on_durable``)
deletes outbox rows. After a crash ``recover()`` cuts a torn last line, finds the last record
that reached each run's shard, drops the outbox rows up to it and returns the rest, in commit
order, to be written again — none lost, none twice.
"""

from __future__ import annotations

import aiosqlite
import anyio
import msgspec

from agentd.engine.budget import RunBudget
from agentd.engine.gate import IntakeGate
from agentd.engine.outbox import Outbox
from agentd.engine.queue import TaskQueue
from agentd.engine.results import Results, Spend
from agentd.episode.lease import Lease
from agentd.errors import AgentdError, TrajectoryError
from agentd.logging import get_logger
from agentd.records import TrajectoryRecord
from agentd.state import Database, State, StateStore
from agentd.trajectories import TrajectorySink, TrajectoryWriter
from agentd.trajectories.shards import check_run_id

log = get_logger(__name__)
_record_decoder = msgspec.json.Decoder(TrajectoryRecord)
_record_encoder = msgspec.json.Encoder()

Replay = tuple[TrajectoryRecord, bytes]
"""An outbox record to write again after a crash: decoded (for its key) and as stored."""


class LeaseLostError(AgentdError):
    """The queue row is no longer ours (the watchdog requeued it); the step was not committed."""


class StepCommitter:
    """Commits steps atomically and reconciles the outbox with the shards."""

    def __init__(self, db: Database, store: StateStore, queue: TaskQueue, results: Results,
                 outbox: Outbox, sink: TrajectorySink, *, budget: RunBudget,
                 gate: IntakeGate) -> None:
        self.db = db
        self.store = store
        self.queue = queue
        self.results = results
        self.outbox = outbox
        self.sink = sink
        self.budget = budget
        self.gate = gate
        self.poisoned = 0  # outbox rows the last recovery had to skip
        self._lock = anyio.Lock()

    async def commit(self, lease: Lease, step: int, state: State, version: int,
                     record: TrajectoryRecord, files: dict[str, str] | None,
                     done: bool) -> Spend:
        """State, queue progress, the run's spend and the outbox row in one transaction, then
        to the writer; returns what the run has spent, this step included. ``files`` is the
        workspace after the step, or None when the step left it as it was. A run that is now
        at a budget cap pauses intake."""
        encoded = _record_encoder.encode(record)  # once: the outbox row and the shard line
        async with self._lock:
            # Once started, a commit finishes: cancelling half-way would only roll it back.
            with anyio.CancelScope(shield=True):
                async with self.db.transaction() as conn:
                    await self.store.save_in(conn, lease.run_id, lease.task_id, lease.episode,
                                             state, version)
                    await self.outbox.put_in(conn, record.key, encoded)
                    if not await self.queue.advance_in(conn, lease, step=step, files=files,
                                                       done=done):
                        raise LeaseLostError(f"lost the lease of {lease.group}")
                    if done:
                        await self.results.record_result_in(
                            conn, lease, final_match=record.reward.final_match, steps=step + 1)
                    spend = await self.results.charge_in(conn, record.run_id, record.usage)
            await self.sink.put(record, encoded)
        reason = self.budget.observe(record.run_id, spend)
        if reason is not None:
            self.gate.pause_for_budget(reason)
        return spend

    async def recover(self, writer: TrajectoryWriter) -> list[Replay]:
        """Drop outbox rows already in the shards; return the rest in commit order. A row
        that cannot be replayed (an unsafe run id, an undecodable record) is skipped and
        reported (``poisoned``), never a reason to refuse to start."""
        pending: list[Replay] = []
        self.poisoned = 0
        async with self.db.transaction() as conn:
            for run_id in await self.outbox.run_ids(conn):
                try:
                    pending += await self._recover_run(conn, writer, check_run_id(run_id))
                except TrajectoryError as exc:
                    rows = await self.outbox.count(conn, run_id)
                    self.poisoned += rows
                    log.error("recovery.outbox_skipped", run_id=repr(run_id)[:200],
                              rows=rows, error=str(exc)[:200])
        return pending

    async def _recover_run(self, conn: aiosqlite.Connection, writer: TrajectoryWriter,
                           run_id: str) -> list[Replay]:
        # prepare() cuts a torn last line and returns the last whole record's key.
        key = await writer.prepare(run_id)
        if key is not None:
            await self.outbox.drop_through(conn, run_id, key)
        out: list[Replay] = []
        for seq, raw in await self.outbox.pending(conn, run_id):
            try:
                out.append((_record_decoder.decode(raw), raw))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.poisoned += 1
                log.error("recovery.outbox_row_skipped", run_id=run_id, seq=seq,
                          error=str(exc)[:200])
        return out
