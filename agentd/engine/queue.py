"""The durable task queue: tasks × episodes in SQLite, leased to episode workers.

A row is one episode (``task_id:episode`` is the GRPO/SRL group key) and moves
``queued → leased → done | failed | dead`` (or ``cancelled``). A lease carries the daemon's
boot id, a random lease id and an expiry: on start every lease of an earlier boot is requeued,
and the watchdog requeues leases that expired (a stalled worker). Step progress
(``next_step`` and the workspace files after the last committed step) is written in the same
transaction as the step's state and trajectory record — see ``engine.commit`` — and is fenced
by the lease id, so a worker that lost its lease can never commit. The row keeps only the
files that differ from the task's own (``null`` for a deleted one), and only a step that
changed the workspace rewrites them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite
import anyio
import msgspec

from agentd.episode.lease import Lease
from agentd.errors import UsageError
from agentd.records import Task
from agentd.state import Database

STATUSES = ("queued", "leased", "done", "failed", "dead", "cancelled")
_files_encoder = msgspec.json.Encoder()
_files_decoder = msgspec.json.Decoder(dict[str, str | None])
_task_decoder = msgspec.json.Decoder(Task)


@dataclass(frozen=True)
class QueueStatistics:
    by_status: dict[str, int]
    leased_here: int


class TaskQueue:
    """The queue repository on the ``Database`` (its tables: ``tasks``, ``queue``)."""

    def __init__(self, db: Database, *, boot_id: str, lease_s: float,
                 max_attempts: int) -> None:
        self._db = db
        self._tx = db.transaction
        self.boot_id = boot_id
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self._leased_here = 0

    # ---------------------------------------------------------------- intake

    async def submit(self, run_id: str, tasks: Iterable[Task], *, episodes: int,
                     policy: str, corpus_version: str = "") -> int:
        """Enqueue every task × episode not already in this run; returns how many were added."""
        now = time.time()
        added = 0
        async with self._tx() as db:
            for task in tasks:
                await self._store_task(db, task)
                rows = [(run_id, task.task_id, ep, policy, task.split, corpus_version, now, now)
                        for ep in range(episodes)]
                cur = await db.executemany(
                    "INSERT OR IGNORE INTO queue(run_id, task_id, episode, policy, split,"
                    " corpus_version, status, enqueued_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)", rows)
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
        """Lease up to ``limit`` queued episodes, oldest first.

        One statement takes the rows (autocommit: one database trip), shielded so a cancel
        cannot lose rows it has already marked leased; their task bodies are then read on
        the reading connection, which already sees the commit. A body cannot change under
        a live lease (``_store_task`` refuses it)."""
        now = time.time()
        lease_id = uuid.uuid4().hex
        with anyio.CancelScope(shield=True):
            # `run_id IS ?` with NULL would match nothing, hence the explicit any-run branch.
            rows = await self._db.write(
                "UPDATE queue SET status='leased', lease_id=?, lease_boot=?, lease_expires=?,"
                " attempts=attempts+1, updated_at=? WHERE rowid IN (SELECT rowid FROM queue"
                " WHERE status='queued' AND (? IS NULL OR run_id=?)"
                " ORDER BY enqueued_at, rowid LIMIT ?)"
                " RETURNING run_id, task_id, episode, policy, split, attempts, next_step, files,"
                " corpus_version",
                (lease_id, self.boot_id, now + self.lease_s, now, run_id, run_id, limit))
            self._leased_here += len(rows)
        return [await self._lease_from(row, lease_id) for row in rows]

    async def _lease_from(self, row: Any, lease_id: str) -> Lease:
        run_id, task_id, episode, policy, split, attempts, next_step, files, corpus = row
        body = await self._db.fetch_all("SELECT body FROM tasks WHERE task_id=?", (task_id,))
        assert body, "queue row without its task"
        task = _task_decoder.decode(body[0][0])
        workspace = _apply_delta(task.files, _files_decoder.decode(files)) if files else None
        return Lease(run_id, task_id, episode, policy, split, lease_id, attempts, next_step,
                     workspace, task, corpus)

    # ---------------------------------------------------------------- progress (inside a tx)

    async def advance_in(self, db: aiosqlite.Connection, lease: Lease, *, step: int,
                         files: dict[str, str] | None, done: bool) -> bool:
        """Record that ``step`` is committed, with the workspace after it (None: unchanged);
        False when the lease was lost (nothing written)."""
        delta = None if files is None else _files_encoder.encode(_delta(lease.task.files, files))
        cur = await db.execute(
            "UPDATE queue SET next_step=?, files=coalesce(?, files), status=?, lease_expires=?,"
            " updated_at=? WHERE run_id=? AND task_id=? AND episode=? AND lease_id=?"
            " AND status='leased' AND next_step=?",
            (step + 1, delta, "done" if done else "leased",
             time.time() + self.lease_s, time.time(), lease.run_id, lease.task_id,
             lease.episode, lease.lease_id, step))
        return cur.rowcount == 1

    async def finish(self, lease: Lease, *, error: str | None = None, retry: bool = True) -> str:
        """End a lease: ``done``; after an error ``queued`` again, or ``dead`` when out of tries
        or when another try cannot help (``retry=False``: the prompt does not fit)."""
        self._leased_here -= 1
        if error is None:
            status = "done"
        else:
            out_of_tries = lease.attempts >= self.max_attempts or not retry
            status = "dead" if out_of_tries else "queued"
        await self._db.write(  # one statement: atomic on its own, one trip
            "UPDATE queue SET status=?, last_error=?, lease_id=NULL, updated_at=?"
            " WHERE run_id=? AND task_id=? AND episode=? AND lease_id=?",
            (status, error, time.time(), lease.run_id, lease.task_id, lease.episode,
             lease.lease_id))
        return status

    async def release(self, lease: Lease) -> None:
        """Give a lease back untouched (drain, shutdown): it does not count as an attempt."""
        self._leased_here -= 1
        await self._db.write(
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
        rows = await self._db.fetch_all(sql + " GROUP BY status", params)
        found: dict[str, int] = {row[0]: row[1] for row in rows}
        return {s: int(found.get(s, 0)) for s in STATUSES}

    async def dead_letters(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self._db.fetch_all(
            "SELECT run_id, task_id, episode, attempts, last_error FROM queue"
            " WHERE status='dead' ORDER BY updated_at DESC LIMIT ?", (limit,))
        keys = ("run_id", "task_id", "episode", "attempts", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def statistics(self, by_status: dict[str, int]) -> QueueStatistics:
        return QueueStatistics(by_status, self._leased_here)


def _delta(original: dict[str, str], files: dict[str, str]) -> dict[str, str | None]:
    """The files that differ from the task's (``None``: deleted)."""
    out: dict[str, str | None] = {p: c for p, c in files.items() if original.get(p) != c}
    out.update({p: None for p in original if p not in files})
    return out


def _apply_delta(original: dict[str, str], delta: dict[str, str | None]) -> dict[str, str]:
    files = dict(original)
    for path, content in delta.items():
        if content is None:
            files.pop(path, None)
        else:
            files[path] = content
    return files
