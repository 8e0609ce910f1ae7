"""The durable task queue: tasks × episodes in SQLite, leased to episode workers.

A row is one episode (``task_id:episode`` is the GRPO/SRL group key) and moves
``queued → leased → done | failed | dead`` (or ``cancelled``). A lease carries the daemon's
boot id, a random lease id and an expiry: on start every lease of an earlier boot is requeued,
and the watchdog requeues leases that expired (a stalled worker). Step progress
(``next_step`` and the workspace files after the last committed step) is written in the same
transaction as the step's state and trajectory record — see ``Engine.commit_step`` — and is
fenced by the lease id, so a worker that lost its lease can never commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiosqlite
import msgspec

from agentd.episode.lease import Lease
from agentd.errors import UsageError
from agentd.records import Task, Usage

Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    policy TEXT NOT NULL,
    split TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_step INTEGER NOT NULL DEFAULT 0,
    files BLOB,
    lease_id TEXT,
    lease_boot TEXT,
    lease_expires REAL,
    last_error TEXT,
    enqueued_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, task_id, episode)
);
CREATE INDEX IF NOT EXISTS queue_by_status ON queue(status, enqueued_at);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    step INTEGER NOT NULL,
    record BLOB NOT NULL,
    UNIQUE (run_id, task_id, episode, step)
);
CREATE TABLE IF NOT EXISTS episode_results (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    policy TEXT NOT NULL,
    final_match INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (run_id, task_id, episode)
);
CREATE INDEX IF NOT EXISTS results_by_policy ON episode_results(policy, task_id);
CREATE TABLE IF NOT EXISTS run_spend (
    run_id TEXT PRIMARY KEY,
    cost_usd REAL NOT NULL,
    tokens INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    run_id TEXT NOT NULL,
    policy TEXT NOT NULL,
    split TEXT NOT NULL,
    route TEXT,
    min_failures INTEGER,
    tasks INTEGER NOT NULL,
    episodes INTEGER NOT NULL,
    submitted_at REAL NOT NULL
);
"""

STATUSES = ("queued", "leased", "done", "failed", "dead", "cancelled")
_files_encoder = msgspec.json.Encoder()
_files_decoder = msgspec.json.Decoder(dict[str, str])
_task_decoder = msgspec.json.Decoder(Task)


@dataclass(frozen=True)
class Spend:
    """What a run's committed steps have cost so far (durable: it survives restarts)."""

    cost_usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class QueueStatistics:
    by_status: dict[str, int]
    leased_here: int


class TaskQueue:
    """SQLite-backed queue sharing the state store's database and transaction lock."""

    def __init__(self, transaction: Transaction, *, boot_id: str, lease_s: float,
                 max_attempts: int) -> None:
        self._tx = transaction
        self.boot_id = boot_id
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._leased_here = 0

    async def create_schema(self) -> None:
        async with self._tx() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                await db.execute(statement)

    # ---------------------------------------------------------------- intake

    async def submit(self, run_id: str, tasks: Iterable[Task], *, episodes: int,
                     policy: str) -> int:
        """Enqueue every task × episode not already in this run; returns how many were added."""
        now = time.time()
        added = 0
        async with self._tx() as db:
            for task in tasks:
                await self._store_task(db, task)
                rows = [(run_id, task.task_id, ep, policy, task.split, now, now)
                        for ep in range(episodes)]
                cur = await db.executemany(
                    "INSERT OR IGNORE INTO queue(run_id, task_id, episode, policy, split, status,"
                    " enqueued_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)", rows)
                added += max(cur.rowcount, 0)
        return added

    async def _store_task(self, db: aiosqlite.Connection, task: Task) -> None:
        """Store ``task``'s body under its id. A rebuilt task (same id, new files or gold)
        replaces the old body, unless a live episode still runs on it: then the submission
        is refused, naming the task and the run, rather than mixing two versions."""
        body = msgspec.json.encode(task)
        cur = await db.execute("SELECT body FROM tasks WHERE task_id=?", (task.task_id,))
        row = await cur.fetchone()
        if row is None:
            await db.execute("INSERT INTO tasks(task_id, body) VALUES (?, ?)",
                             (task.task_id, body))
            return
        if bytes(row[0]) == body:
            return
        cur = await db.execute(
            "SELECT run_id FROM queue WHERE task_id=? AND status IN ('queued', 'leased')"
            " LIMIT 1", (task.task_id,))
        live = await cur.fetchone()
        if live is not None:
            raise UsageError(f"task {task.task_id} differs from the version run {live[0]} "
                             "is still working on; let that run finish or cancel it first")
        await db.execute("UPDATE tasks SET body=? WHERE task_id=?", (body, task.task_id))

    async def record_submission(self, run_id: str, *, policy: str, split: str, tasks: int,
                                episodes: int, route: str | None = None,
                                min_failures: int | None = None) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO submissions(run_id, policy, split, route, min_failures, tasks,"
                " episodes, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, policy, split, route, min_failures, tasks, episodes, time.time()))

    async def failed_by(self, policy: str, min_failures: int) -> set[str]:
        """Tasks whose episodes under ``policy`` ended without a final match ≥ k times."""
        async with self._tx() as db:
            cur = await db.execute(
                "SELECT task_id FROM episode_results WHERE policy=? AND final_match=0"
                " GROUP BY task_id HAVING count(*) >= ?", (policy, min_failures))
            return {row[0] for row in await cur.fetchall()}

    async def cancel(self, run_id: str, task_ids: list[str] | None = None) -> int:
        """Cancel queued episodes of a run (all, or the given tasks); leased ones finish."""
        sql = "UPDATE queue SET status='cancelled', updated_at=? WHERE run_id=? AND status='queued'"
        params: list[Any] = [time.time(), run_id]
        if task_ids:
            placeholders = ",".join("?" * len(task_ids))
            sql += f" AND task_id IN ({placeholders})"
            params += task_ids
        async with self._tx() as db:
            cur = await db.execute(sql, params)
            return max(cur.rowcount, 0)

    # ---------------------------------------------------------------- leasing

    async def recover(self) -> int:
        """Requeue every lease of an earlier boot (their workers died with it)."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE queue SET status='queued', lease_id=NULL, updated_at=?"
                " WHERE status='leased' AND lease_boot IS NOT ?", (time.time(), self.boot_id))
            return max(cur.rowcount, 0)

    async def requeue_expired(self) -> int:
        """The watchdog: leases past their expiry go back to the queue."""
        now = time.time()
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE queue SET status='queued', lease_id=NULL, updated_at=?,"
                " last_error='lease expired (stalled worker)'"
                " WHERE status='leased' AND lease_expires < ?", (now, now))
            return max(cur.rowcount, 0)

    async def lease(self, limit: int = 1, *, run_id: str | None = None) -> list[Lease]:
        """Lease up to ``limit`` queued episodes, oldest first."""
        now = time.time()
        lease_id = uuid.uuid4().hex
        async with self._tx() as db:
            # `run_id IS ?` with NULL would match nothing, hence the explicit any-run branch.
            cur = await db.execute(
                "UPDATE queue SET status='leased', lease_id=?, lease_boot=?, lease_expires=?,"
                " attempts=attempts+1, updated_at=? WHERE rowid IN (SELECT rowid FROM queue"
                " WHERE status='queued' AND (? IS NULL OR run_id=?)"
                " ORDER BY enqueued_at, rowid LIMIT ?)"
                " RETURNING run_id, task_id, episode, policy, split, attempts, next_step, files",
                (lease_id, self.boot_id, now + self.lease_s, now, run_id, run_id, limit))
            rows = list(await cur.fetchall())
            leases = [await self._lease_from(db, row, lease_id) for row in rows]
        self._leased_here += len(leases)
        return leases

    async def _lease_from(self, db: aiosqlite.Connection, row: Any, lease_id: str) -> Lease:
        run_id, task_id, episode, policy, split, attempts, next_step, files = row
        cur = await db.execute("SELECT body FROM tasks WHERE task_id=?", (task_id,))
        body = await cur.fetchone()
        assert body is not None, "queue row without its task"
        return Lease(run_id, task_id, episode, policy, split, lease_id, attempts, next_step,
                     _files_decoder.decode(files) if files else None,
                     _task_decoder.decode(body[0]))

    # ---------------------------------------------------------------- progress (inside a tx)

    async def advance_in(self, db: aiosqlite.Connection, lease: Lease, *, step: int,
                         files: dict[str, str], done: bool) -> bool:
        """Record that ``step`` is committed; False when the lease was lost (nothing written)."""
        cur = await db.execute(
            "UPDATE queue SET next_step=?, files=?, status=?, lease_expires=?, updated_at=?"
            " WHERE run_id=? AND task_id=? AND episode=? AND lease_id=? AND status='leased'"
            " AND next_step=?",
            (step + 1, _files_encoder.encode(files), "done" if done else "leased",
             time.time() + self.lease_s, time.time(), lease.run_id, lease.task_id,
             lease.episode, lease.lease_id, step))
        return cur.rowcount == 1

    async def record_result_in(self, db: aiosqlite.Connection, lease: Lease, *,
                               final_match: bool, steps: int) -> None:
        """An episode's outcome, for difficulty-aware teacher routing."""
        await db.execute(
            "INSERT OR REPLACE INTO episode_results(run_id, task_id, episode, policy,"
            " final_match, steps, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lease.run_id, lease.task_id, lease.episode, lease.policy, int(final_match), steps,
             time.time()))

    async def charge_in(self, db: aiosqlite.Connection, run_id: str, usage: Usage) -> Spend:
        """Add one step's usage to its run's spend, in the step's own transaction; the totals.

        In the commit transaction a step is charged exactly when it is committed, so a
        restart goes on from what the run really spent instead of from zero.
        """
        cur = await db.execute(
            "INSERT INTO run_spend(run_id, cost_usd, tokens) VALUES (?, ?, ?)"
            " ON CONFLICT(run_id) DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd,"
            " tokens = tokens + excluded.tokens RETURNING cost_usd, tokens",
            (run_id, usage.cost_usd, usage.prompt_tokens + usage.completion_tokens))
        row = await cur.fetchone()
        await cur.close()
        return Spend(float(row[0]), int(row[1])) if row else Spend()

    async def finish(self, lease: Lease, *, error: str | None = None, retry: bool = True) -> str:
        """End a lease: ``done``; after an error ``queued`` again, or ``dead`` when out of tries
        or when another try cannot help (``retry=False``: the prompt does not fit)."""
        self._leased_here -= 1
        if error is None:
            status = "done"
        else:
            out_of_tries = lease.attempts >= self.max_attempts or not retry
            status = "dead" if out_of_tries else "queued"
        async with self._tx() as db:
            await db.execute(
                "UPDATE queue SET status=?, last_error=?, lease_id=NULL, updated_at=?"
                " WHERE run_id=? AND task_id=? AND episode=? AND lease_id=?",
                (status, error, time.time(), lease.run_id, lease.task_id, lease.episode,
                 lease.lease_id))
        return status

    async def release(self, lease: Lease) -> None:
        """Give a lease back untouched (drain, shutdown): it does not count as an attempt."""
        self._leased_here -= 1
        async with self._tx() as db:
            await db.execute(
                "UPDATE queue SET status='queued', lease_id=NULL, attempts=max(attempts-1, 0),"
                " updated_at=? WHERE run_id=? AND task_id=? AND episode=? AND lease_id=?"
                " AND status='leased'",
                (time.time(), lease.run_id, lease.task_id, lease.episode, lease.lease_id))

    # ---------------------------------------------------------------- reading

    async def counts(self, run_id: str | None = None) -> dict[str, int]:
        sql = "SELECT status, count(*) FROM queue"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql, params = sql + " WHERE run_id=?", (run_id,)
        async with self._tx() as db:
            cur = await db.execute(sql + " GROUP BY status", params)
            found: dict[str, int] = {row[0]: row[1] for row in await cur.fetchall()}
        return {s: int(found.get(s, 0)) for s in STATUSES}

    async def dead_letters(self, limit: int = 20) -> list[dict[str, Any]]:
        async with self._tx() as db:
            cur = await db.execute(
                "SELECT run_id, task_id, episode, attempts, last_error FROM queue"
                " WHERE status='dead' ORDER BY updated_at DESC LIMIT ?", (limit,))
            rows = await cur.fetchall()
        keys = ("run_id", "task_id", "episode", "attempts", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def statistics(self, by_status: dict[str, int]) -> QueueStatistics:
        return QueueStatistics(by_status, self._leased_here)
