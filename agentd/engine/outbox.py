"""The outbox: trajectory records committed with their step, kept until a shard has them.

A repository on the ``Database``. ``put_in`` runs inside the step's commit transaction;
``on_durable`` runs when the writer reports records durable; the rest serves recovery after a
crash (which runs have rows, drop the ones a shard already holds, the rest in commit order).
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from agentd.records import Key, TrajectoryRecord
from agentd.state import Database


class Outbox:
    """The ``outbox`` table on the ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_in(self, conn: aiosqlite.Connection, key: Key, encoded: bytes) -> None:
        """Store one record's JSON under its key, inside the step's transaction."""
        await conn.execute(
            "INSERT INTO outbox(run_id, task_id, episode, step, record) VALUES (?, ?, ?, ?, ?)",
            (*key, encoded))

    async def on_durable(self, records: Sequence[TrajectoryRecord]) -> None:
        """The writer made these durable in a shard: they leave the outbox."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM outbox WHERE run_id=? AND task_id=? AND episode=? AND step=?",
                [r.key for r in records])

    async def run_ids(self, conn: aiosqlite.Connection) -> list[str]:
        cur = await conn.execute("SELECT DISTINCT run_id FROM outbox")
        return [str(row[0]) for row in await cur.fetchall()]

    async def count(self, conn: aiosqlite.Connection, run_id: str) -> int:
        cur = await conn.execute("SELECT COUNT(*) FROM outbox WHERE run_id=?", (run_id,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def drop_through(self, conn: aiosqlite.Connection, run_id: str, key: Key) -> None:
        """Drop ``run_id``'s rows up to and including ``key`` (the last one a shard holds)."""
        await conn.execute(
            "DELETE FROM outbox WHERE run_id=? AND seq <= (SELECT seq FROM outbox"
            " WHERE run_id=? AND task_id=? AND episode=? AND step=?)", (run_id, *key))

    async def pending(self, conn: aiosqlite.Connection, run_id: str) -> list[tuple[int, bytes]]:
        """``run_id``'s rows in commit order: (sequence number, the record's JSON)."""
        cur = await conn.execute("SELECT seq, record FROM outbox WHERE run_id=? ORDER BY seq",
                                 (run_id,))
        return [(int(seq), bytes(raw)) for seq, raw in await cur.fetchall()]
