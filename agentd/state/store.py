"""The state of every (run, task, episode), saved by compare-and-swap: the ``StateStore``.

One row per (run_id, task_id, episode) holds the state as JSON and a version number; every
write also lands in ``state_versions`` (by trigger, so no writer can skip the audit trail).
``save`` succeeds only if the row still has the version the caller loaded, so two writers can
never silently overwrite each other: the loser gets ``StateConflictError``, reloads and
retries (``update`` does exactly that, with a bound).

``StateStore`` is the Protocol the episode runner and the engine use; ``SqliteStateStore`` is
the repository on ``Database`` that implements it. ``save_in`` joins the caller's
``Database.transaction()``, which is how a step's state commits together with its queue
progress and trajectory record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

import aiosqlite
import msgspec

from agentd.config import StateConfig
from agentd.errors import StateConflictError, StateError
from agentd.state.database import Closing, Database
from agentd.state.model import State, decode_state, encode_state

_INSERT: Final = (
    "INSERT INTO states (run_id, task_id, episode, version, state, updated_at) "
    "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING"
)
_UPDATE: Final = (
    "UPDATE states SET version = version + 1, state = ?, updated_at = ? "
    "WHERE run_id = ? AND task_id = ? AND episode = ? AND version = ?"
)
_KEY: Final = "run_id = ? AND task_id = ? AND episode = ?"
UPDATE_ATTEMPTS: Final = 16
"""CAS retries in ``update`` before giving up with ``StateConflictError``."""


class StoredState(msgspec.Struct, frozen=True):
    """A state and the version it was saved as (0 and an empty state when never saved)."""

    state: State
    version: int
    updated_at: float | None = None


@dataclasses.dataclass
class StateStoreStatistics:
    """A snapshot of the store's counters (for ``agentd ctl status``)."""

    loads: int = 0
    saves: int = 0
    conflicts: int = 0


class StateStore(Protocol):
    """Versioned episode state: what the runner and the engine need from a store."""

    async def load(self, run_id: str, task_id: str, episode: int) -> StoredState:
        """The latest committed state, or version 0 and an empty state."""
        ...

    async def save(self, run_id: str, task_id: str, episode: int, state: State,
                   expected_version: int) -> int:
        """Save if the stored version is still ``expected_version``; the new version."""
        ...

    async def save_in(self, conn: aiosqlite.Connection, run_id: str, task_id: str,
                      episode: int, state: State, expected_version: int) -> int:
        """``save`` inside the caller's open transaction."""
        ...

    async def update(self, run_id: str, task_id: str, episode: int,
                     change: Callable[[State], State], *,
                     attempts: int = UPDATE_ATTEMPTS) -> StoredState:
        """Load, change, save; on a conflict reload and retry (bounded)."""
        ...


class SqliteStateStore(Closing):
    """``StateStore`` on a ``Database``; see the module docstring."""

    def __init__(self, db: Database, *, owns_database: bool = False) -> None:
        self.db = db
        self._owns_database = owns_database
        self._n = StateStoreStatistics()

    @classmethod
    async def open(cls, path: Path, config: StateConfig | None = None, *,
                   read_only: bool = False) -> SqliteStateStore:
        """A store on its own ``Database`` at ``path``, closed with the store (CLI, tests)."""
        return cls(await Database.open(path, config, read_only=read_only), owns_database=True)

    async def close(self) -> None:
        """Close the database if this store opened it (idempotent)."""
        if self._owns_database:
            await self.db.close()

    def statistics(self) -> StateStoreStatistics:
        """Counters since open."""
        return dataclasses.replace(self._n)

    # ------------------------------------------------------------ reads

    async def load(self, run_id: str, task_id: str, episode: int) -> StoredState:
        self._n.loads += 1
        sql = f"SELECT state, version, updated_at FROM states WHERE {_KEY}"  # noqa: S608
        rows = await self.db.fetch_all(sql, (run_id, task_id, episode))
        if not rows:
            return StoredState(State(), 0)
        row = rows[0]
        return StoredState(_decode(row[0], run_id, task_id, episode), int(row[1]), float(row[2]))

    async def history(
        self, run_id: str, task_id: str, episode: int, *, limit: int = 1000
    ) -> list[StoredState]:
        """Every saved version, oldest first (the audit trail); at most ``limit`` newest."""
        sql = (
            "SELECT state, version, created_at FROM state_versions "  # noqa: S608
            f"WHERE {_KEY} ORDER BY version DESC LIMIT ?"
        )
        rows = await self.db.fetch_all(sql, (run_id, task_id, episode, limit))
        out = [StoredState(_decode(r[0], run_id, task_id, episode), int(r[1]), float(r[2]))
               for r in rows]
        out.reverse()
        return out

    async def latest_run(self, task_id: str, episode: int) -> str | None:
        """The run that most recently saved state for this task and episode."""
        rows = await self.db.fetch_all(
            "SELECT run_id FROM states WHERE task_id = ? AND episode = ? "
            "ORDER BY updated_at DESC LIMIT 1", (task_id, episode))
        return str(rows[0][0]) if rows else None

    async def episodes(self, task_id: str) -> list[int]:
        """Episodes of ``task_id`` that have state, in any run."""
        rows = await self.db.fetch_all(
            "SELECT DISTINCT episode FROM states WHERE task_id = ? ORDER BY episode", (task_id,))
        return [int(r[0]) for r in rows]

    # ------------------------------------------------------------ writes

    async def save(
        self, run_id: str, task_id: str, episode: int, state: State, expected_version: int
    ) -> int:
        sql, params = self._cas(run_id, task_id, episode, state, expected_version)
        return self._saved(await self.db.execute(sql, params), run_id, task_id, episode,
                           expected_version)

    async def save_in(
        self,
        conn: aiosqlite.Connection,
        run_id: str,
        task_id: str,
        episode: int,
        state: State,
        expected_version: int,
    ) -> int:
        """``save`` inside the caller's ``Database.transaction()``; its commit makes it stick."""
        if not conn.in_transaction:
            raise StateError("save_in needs an open transaction (use Database.transaction())")
        sql, params = self._cas(run_id, task_id, episode, state, expected_version)
        cursor = await conn.execute(sql, params)
        return self._saved(cursor.rowcount, run_id, task_id, episode, expected_version)

    @staticmethod
    def _cas(run_id: str, task_id: str, episode: int, state: State,
             expected_version: int) -> tuple[str, tuple[object, ...]]:
        if expected_version < 0:
            raise StateError(f"expected_version must be >= 0, got {expected_version}")
        blob, now = encode_state(state).decode(), time.time()
        if expected_version == 0:
            return _INSERT, (run_id, task_id, episode, blob, now)
        return _UPDATE, (blob, now, run_id, task_id, episode, expected_version)

    def _saved(self, rowcount: int, run_id: str, task_id: str, episode: int,
               expected_version: int) -> int:
        if rowcount != 1:
            self._n.conflicts += 1
            raise StateConflictError(
                f"state of {run_id}/{task_id}/{episode} is no longer version {expected_version}"
            )
        self._n.saves += 1
        return expected_version + 1

    async def update(
        self,
        run_id: str,
        task_id: str,
        episode: int,
        change: Callable[[State], State],
        *,
        attempts: int = UPDATE_ATTEMPTS,
    ) -> StoredState:
        for _ in range(attempts):
            current = await self.load(run_id, task_id, episode)
            new = change(current.state)
            try:
                version = await self.save(run_id, task_id, episode, new, current.version)
            except StateConflictError:
                await asyncio.sleep(0)  # let the winner's followers run before we reload
                continue
            return StoredState(new, version, time.time())
        raise StateConflictError(
            f"state of {run_id}/{task_id}/{episode}: {attempts} conflicting saves in a row"
        )


def _decode(blob: str, run_id: str, task_id: str, episode: int) -> State:
    try:
        return decode_state(blob)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"state of {run_id}/{task_id}/{episode} is corrupt: {exc}") from None
