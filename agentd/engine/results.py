"""The outcome tables: episode results, each run's spend, and the submissions that made runs.

A repository on the ``Database``. ``record_result_in`` and ``charge_in`` run inside a step's
commit transaction, so an episode's outcome and a step's cost are stored exactly when the
step is; ``failed_by`` feeds difficulty-aware teacher routing, and ``routed_submissions`` is
the query the teacher report reads (read-only, with or without a running daemon).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import anyio

from agentd.episode.lease import Lease
from agentd.records import Usage
from agentd.state import Database
from agentd.state.schema import SCHEMA_VERSION


@dataclass(frozen=True)
class Spend:
    """What a run's committed steps have cost so far (durable: it survives restarts)."""

    cost_usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class Submission:
    """One ``submit`` as recorded: what ran, and for routed runs how tasks were chosen."""

    run_id: str
    policy: str
    split: str
    tasks: int
    episodes: int
    route: str | None = None
    min_failures: int | None = None


class Results:
    """``episode_results``, ``run_spend`` and ``submissions`` on the ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_result_in(self, conn: aiosqlite.Connection, lease: Lease, *,
                               final_match: bool, steps: int) -> None:
        """An episode's outcome, inside the commit of its last step."""
        await conn.execute(
            "INSERT OR REPLACE INTO episode_results(run_id, task_id, episode, policy,"
            " final_match, steps, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (lease.run_id, lease.task_id, lease.episode, lease.policy, int(final_match), steps,
             time.time()))

    async def charge_in(self, conn: aiosqlite.Connection, run_id: str, usage: Usage) -> Spend:
        """Add one step's usage to its run's spend, in the step's own transaction; the totals.

        In the commit transaction a step is charged exactly when it is committed, so a
        restart goes on from what the run really spent instead of from zero.
        """
        # execute_fetchall: one trip to the connection's thread, not execute+fetch+close.
        rows = list(await conn.execute_fetchall(
            "INSERT INTO run_spend(run_id, cost_usd, tokens) VALUES (?, ?, ?)"
            " ON CONFLICT(run_id) DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd,"
            " tokens = tokens + excluded.tokens RETURNING cost_usd, tokens",
            (run_id, usage.cost_usd, usage.prompt_tokens + usage.completion_tokens)))
        return Spend(float(rows[0][0]), int(rows[0][1])) if rows else Spend()

    async def record_submission(self, submission: Submission) -> None:
        s = submission
        await self._db.execute(
            "INSERT INTO submissions(run_id, policy, split, route, min_failures, tasks,"
            " episodes, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (s.run_id, s.policy, s.split, s.route, s.min_failures, s.tasks, s.episodes,
             time.time()))

    async def failed_by(self, policy: str, min_failures: int) -> set[str]:
        """Tasks whose episodes under ``policy`` ended without a final match ≥ k times."""
        rows = await self._db.fetch_all(
            "SELECT task_id FROM episode_results WHERE policy=? AND final_match=0"
            " GROUP BY task_id HAVING count(*) >= ?", (policy, min_failures))
        return {str(row[0]) for row in rows}

    async def routed_submissions(self) -> list[Submission]:
        """Difficulty-routed submissions, oldest first."""
        rows = await self._db.fetch_all(
            "SELECT run_id, policy, split, tasks, episodes, route, min_failures"
            " FROM submissions WHERE route IS NOT NULL ORDER BY submitted_at")
        return [Submission(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]),
                           r[5], r[6]) for r in rows]


async def routed_submissions(database: Path) -> list[Submission]:
    """``Results.routed_submissions`` of the file at ``database``, opened read-only; none when
    there is no file yet or an agentd older than this one last opened it (no such table)."""
    if not await anyio.Path(database).is_file():
        return []
    async with await Database.open(database, read_only=True) as db:
        if await db.schema_version() < SCHEMA_VERSION:
            return []
        return await Results(db).routed_submissions()
