"""``StateStore``: the state of every (run, task, episode) in SQLite, saved by compare-and-swap.

One row per (run_id, task_id, episode) holds the state as JSON and a version number; every
write also lands in ``state_versions`` (by trigger, so no writer can skip the audit trail).
``save`` succeeds only if the row still has the version the caller loaded, so two writers can
never silently overwrite each other: the loser gets ``StateConflictError``, reloads and
retries (``update`` does exactly that, with a bound).

The database file is shared: the task queue and the trajectory outbox add their tables with
``execute_schema`` and commit a step's rows together with its state in one ``transaction()``
(``save_in``). All writes go through one connection whose transactions an asyncio lock
serialises (SQLite has one writer anyway; queueing in-process is cheaper than spinning on
SQLITE_BUSY). Reads use a second connection, so they see only committed rows and never wait
for a writer (WAL). aiosqlite runs each connection on its own thread: nothing here blocks the
event loop, including ``busy_timeout`` waits for another process's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiosqlite
import anyio
import msgspec

from agentd.config import StateConfig
from agentd.errors import StateConflictError, StateError
from agentd.logging import get_logger
from agentd.state.model import State, decode_state, encode_state

log = get_logger(__name__)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS states (
    run_id     TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    episode    INTEGER NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    state      TEXT    NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (run_id, task_id, episode)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS states_by_task ON states (task_id, episode, updated_at);
CREATE TABLE IF NOT EXISTS state_versions (
    run_id     TEXT    NOT NULL,
    task_id    TEXT    NOT NULL,
    episode    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (run_id, task_id, episode, version)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS states_audit_insert AFTER INSERT ON states BEGIN
    INSERT INTO state_versions VALUES
        (NEW.run_id, NEW.task_id, NEW.episode, NEW.version, NEW.state, NEW.updated_at);
END;
CREATE TRIGGER IF NOT EXISTS states_audit_update AFTER UPDATE ON states BEGIN
    INSERT INTO state_versions VALUES
        (NEW.run_id, NEW.task_id, NEW.episode, NEW.version, NEW.state, NEW.updated_at);
END;
"""

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


@dataclasses.dataclass(frozen=True)
class StateStoreStatistics:
    """A snapshot of the store's counters (for ``agentd ctl status``)."""

    loads: int
    saves: int
    conflicts: int
    transactions: int
    rollbacks: int
    waiting: int


@dataclasses.dataclass
class _Counters:
    loads: int = 0
    saves: int = 0
    conflicts: int = 0
    transactions: int = 0
    rollbacks: int = 0
    waiting: int = 0


class StateStore:
    """Versioned episode state on aiosqlite; see the module docstring."""

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: Path
    ) -> None:
        self._writer = writer
        self._reader = reader
        self.path = path
        self._lock = asyncio.Lock()
        self._n = _Counters()

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path, config: StateConfig | None = None) -> StateStore:
        """Open (creating if needed) the database at ``path``: WAL, settings from config."""
        config = config or StateConfig()
        try:
            return await cls._open(path, config)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot open the state database: {exc}") from None

    @classmethod
    async def _open(cls, path: Path, config: StateConfig) -> StateStore:
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        writer = await _connect(path, config)
        try:
            reader = await _connect(path, config)
        except BaseException:
            await writer.close()
            raise
        store = cls(writer, reader, path)
        try:
            await store._setup()
        except BaseException:
            await store.close()
            raise
        return store

    async def _setup(self) -> None:
        async with self._writer.execute("PRAGMA journal_mode = WAL") as cur:
            row = await cur.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            raise StateError(f"{self.path}: SQLite refused WAL mode (got {row!r})")
        await self.execute_schema(SCHEMA)
        await self._reader.execute("PRAGMA query_only = ON")

    async def close(self) -> None:
        """Close both connections (idempotent)."""
        for db in (self._reader, self._writer):
            with contextlib.suppress(ValueError):  # already closed
                await db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connection(self) -> aiosqlite.Connection:
        """The writing connection; use it only inside ``transaction()``."""
        return self._writer

    def statistics(self) -> StateStoreStatistics:
        """Counters since open."""
        return StateStoreStatistics(**dataclasses.asdict(self._n))

    # ------------------------------------------------------------ transactions

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception), one at a time."""
        self._n.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._n.waiting -= 1
        try:
            db = await self._begin()
            try:
                yield db
            except BaseException:
                await self._rollback(db)
                raise
            await self._commit(db)
        finally:
            self._lock.release()

    async def _begin(self) -> aiosqlite.Connection:
        db = self._writer
        if db.in_transaction:  # a rollback cut short by cancellation left one open
            await db.execute("ROLLBACK")
        await db.execute("BEGIN IMMEDIATE")
        self._n.transactions += 1
        return db

    async def _rollback(self, db: aiosqlite.Connection) -> None:
        self._n.rollbacks += 1
        with anyio.CancelScope(shield=True):
            if db.in_transaction:
                await db.execute("ROLLBACK")

    async def _commit(self, db: aiosqlite.Connection) -> None:
        # Shielded: a COMMIT abandoned half-way would leave us not knowing what was written.
        with anyio.CancelScope(shield=True):
            try:
                await db.execute("COMMIT")
            except BaseException:
                await self._rollback(db)
                raise

    async def execute_schema(self, ddl: str) -> None:
        """Run DDL (``CREATE … IF NOT EXISTS``) for another component's tables in this db."""
        async with self._lock:
            await self._writer.executescript(ddl)

    # ------------------------------------------------------------ reads

    async def load(self, run_id: str, task_id: str, episode: int) -> StoredState:
        """The latest committed state, or version 0 and an empty state."""
        self._n.loads += 1
        sql = f"SELECT state, version, updated_at FROM states WHERE {_KEY}"  # noqa: S608
        # execute_fetchall: one trip to the reader's thread instead of execute+fetch+close.
        rows = list(await self._reader.execute_fetchall(sql, (run_id, task_id, episode)))
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
        async with self._reader.execute(sql, (run_id, task_id, episode, limit)) as cur:
            rows = await cur.fetchall()
        out = [StoredState(_decode(r[0], run_id, task_id, episode), int(r[1]), float(r[2]))
               for r in rows]
        out.reverse()
        return out

    async def latest_run(self, task_id: str, episode: int) -> str | None:
        """The run that most recently saved state for this task and episode."""
        sql = (
            "SELECT run_id FROM states WHERE task_id = ? AND episode = ? "
            "ORDER BY updated_at DESC LIMIT 1"
        )
        async with self._reader.execute(sql, (task_id, episode)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def episodes(self, task_id: str) -> list[int]:
        """Episodes of ``task_id`` that have state, in any run."""
        sql = "SELECT DISTINCT episode FROM states WHERE task_id = ? ORDER BY episode"
        async with self._reader.execute(sql, (task_id,)) as cur:
            rows = await cur.fetchall()
        return [int(r[0]) for r in rows]

    # ------------------------------------------------------------ writes

    async def save(
        self, run_id: str, task_id: str, episode: int, state: State, expected_version: int
    ) -> int:
        """Save if the stored version is still ``expected_version``; returns the new version.

        One statement in autocommit mode is its own transaction in SQLite (the audit trigger
        included), so this needs no BEGIN/COMMIT: one trip to the connection's thread.
        """
        async with self._lock:
            db = self._writer
            if db.in_transaction:  # a rollback cut short by cancellation left one open
                await db.execute("ROLLBACK")
            return await self._cas(db, run_id, task_id, episode, state, expected_version)

    async def save_in(
        self,
        db: aiosqlite.Connection,
        run_id: str,
        task_id: str,
        episode: int,
        state: State,
        expected_version: int,
    ) -> int:
        """``save`` inside the caller's ``transaction()``; the caller's commit makes it stick."""
        if not db.in_transaction:
            raise StateError("save_in needs an open transaction (use StateStore.transaction())")
        return await self._cas(db, run_id, task_id, episode, state, expected_version)

    async def _cas(
        self,
        db: aiosqlite.Connection,
        run_id: str,
        task_id: str,
        episode: int,
        state: State,
        expected_version: int,
    ) -> int:
        if expected_version < 0:
            raise StateError(f"expected_version must be >= 0, got {expected_version}")
        blob, now = encode_state(state).decode(), time.time()
        if expected_version == 0:
            cur = await db.execute(_INSERT, (run_id, task_id, episode, blob, now))
        else:
            key = (run_id, task_id, episode, expected_version)
            cur = await db.execute(_UPDATE, (blob, now, *key))
        if cur.rowcount != 1:
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
        """Load, apply ``change``, save; on a CAS conflict reload and try again (bounded)."""
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


async def _connect(path: Path, config: StateConfig) -> aiosqlite.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; sqlite3's implicit
    # transactions would otherwise start one behind our back.
    db = await aiosqlite.connect(path, isolation_level=None, timeout=config.busy_timeout_ms / 1000)
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
        await db.execute(f"PRAGMA synchronous = {config.sqlite_synchronous}")
    except BaseException:
        await db.close()
        raise
    return db


def _decode(blob: str, run_id: str, task_id: str, episode: int) -> State:
    try:
        return decode_state(blob)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"state of {run_id}/{task_id}/{episode} is corrupt: {exc}") from None
