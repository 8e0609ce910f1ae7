"""``Database``: the one owner of agentd's SQLite file — connections, schema, transactions.

Every table lives in one file (``agentd.paths.database``) so a step's state, queue progress,
spend and trajectory record commit in one transaction. This module is the only one that knows
it is SQLite: the pragmas, WAL, ``BEGIN IMMEDIATE``, ``user_version`` and read-only URIs. The
repositories on top (``state.store``, ``engine.queue``, ``engine.outbox``, ``engine.results``)
speak plain SQL through ``transaction()``, ``execute()``, ``write()`` and ``fetch_all()``; a
second backend (a networked database for several daemons) would replace this module and keep
theirs.

All writes go through one connection whose transactions an asyncio lock serialises (SQLite
has one writer anyway; queueing in-process is cheaper than spinning on SQLITE_BUSY). Reads use
a second connection, so they see only committed rows and never wait for a writer (WAL).
aiosqlite runs each connection on its own thread: nothing here blocks the event loop,
including ``busy_timeout`` waits for another process's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite
import anyio

from agentd.config import StateConfig
from agentd.errors import StateError
from agentd.state.schema import MIGRATIONS, SCHEMA_VERSION

Params = Sequence[Any]


@dataclasses.dataclass
class DatabaseStatistics:
    """Counters since open (for ``agentd ctl status`` and the tests)."""

    transactions: int = 0
    rollbacks: int = 0
    waiting: int = 0


class Closing:
    """``async with x:`` closes ``x`` (the database and the stores that own one)."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Database(Closing):
    """One SQLite file: a serialised writer, a committed-only reader, the schema version."""

    def __init__(self, writer: aiosqlite.Connection | None, reader: aiosqlite.Connection,
                 path: Path) -> None:
        self._writer = writer
        self._reader = reader
        self.path = path
        self._lock = asyncio.Lock()
        self._n = DatabaseStatistics()

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, path: Path, config: StateConfig | None = None, *,
                   read_only: bool = False) -> Database:
        """Open ``path``, creating and migrating it, or (``read_only``) only read it.

        A read-only open never creates the file or changes its schema: it is for readers
        (reports, ``agentd state dump``) that must not disturb a running daemon.
        """
        config = config or StateConfig()
        try:
            if read_only:
                return await cls._open_read_only(path, config)
            return await cls._open(path, config)
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot open the database: {exc}") from None

    @classmethod
    async def _open(cls, path: Path, config: StateConfig) -> Database:
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        writer = await _connect(str(path), config)
        try:
            reader = await _connect(str(path), config)
        except BaseException:
            await writer.close()
            raise
        db = cls(writer, reader, path)
        try:
            await db._setup()
        except BaseException:
            await db.close()
            raise
        return db

    @classmethod
    async def _open_read_only(cls, path: Path, config: StateConfig) -> Database:
        target = await anyio.Path(path).resolve()
        if not await target.is_file():
            raise StateError(f"no database at {path}")
        reader = await _connect(f"{target.as_uri()}?mode=ro", config, uri=True)
        db = cls(None, reader, path)
        try:
            await db._check_version(await db.schema_version())
        except BaseException:
            await db.close()
            raise
        return db

    async def _setup(self) -> None:
        writer = self._writing()
        async with writer.execute("PRAGMA journal_mode = WAL") as cur:
            row = await cur.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            raise StateError(f"{self.path}: SQLite refused WAL mode (got {row!r})")
        await self._migrate()
        await self._reader.execute("PRAGMA query_only = ON")

    async def _migrate(self) -> None:
        writer = self._writing()
        version = await self.schema_version()
        await self._check_version(version)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # One script, one transaction: a failure leaves the file at the older version.
            script = (f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\n"
                      f"PRAGMA user_version = {target};\nCOMMIT;")
            try:
                await writer.executescript(script)
            except BaseException:
                if writer.in_transaction:
                    await writer.execute("ROLLBACK")
                raise

    async def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: schema version {version} is newer than this agentd's "
                f"({SCHEMA_VERSION}); upgrade agentd or point agentd.paths.database elsewhere")

    async def schema_version(self) -> int:
        """The file's schema version (``user_version``)."""
        rows = await self.fetch_all("PRAGMA user_version")
        return int(rows[0][0]) if rows else 0

    async def close(self) -> None:
        """Close both connections (idempotent)."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(ValueError):  # already closed
                    await conn.close()

    def statistics(self) -> DatabaseStatistics:
        return dataclasses.replace(self._n)

    # ------------------------------------------------------------ writes

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception), one at a time."""
        self._n.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._n.waiting -= 1
        try:
            conn = await self._begin()
            try:
                yield conn
            except BaseException:
                await self._rollback(conn)
                raise
            await self._commit(conn)
        finally:
            self._lock.release()

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One write statement as its own transaction (autocommit); its row count.

        SQLite makes a single statement atomic, triggers included, so this needs no
        BEGIN/COMMIT.
        """
        async with self._autocommit() as conn:
            cursor = await conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def write(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """One write statement as its own transaction (autocommit) and the rows of its
        ``RETURNING`` clause, if it has one: a single trip to the connection's thread."""
        async with self._autocommit() as conn:
            rows: Iterable[Any] = await conn.execute_fetchall(sql, params)
            return [tuple(row) for row in rows]

    @contextlib.asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer, between transactions, for one statement of its own."""
        async with self._lock:
            conn = self._writing()
            if conn.in_transaction:  # a rollback cut short by cancellation left one open
                await conn.execute("ROLLBACK")
            yield conn

    def _writing(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StateError(f"{self.path} is open read-only")
        return self._writer

    async def _begin(self) -> aiosqlite.Connection:
        conn = self._writing()
        if conn.in_transaction:  # a rollback cut short by cancellation left one open
            await conn.execute("ROLLBACK")
        await conn.execute("BEGIN IMMEDIATE")
        self._n.transactions += 1
        return conn

    async def _rollback(self, conn: aiosqlite.Connection) -> None:
        self._n.rollbacks += 1
        with anyio.CancelScope(shield=True):
            if conn.in_transaction:
                await conn.execute("ROLLBACK")

    async def _commit(self, conn: aiosqlite.Connection) -> None:
        # Shielded: a COMMIT abandoned half-way would leave us not knowing what was written.
        with anyio.CancelScope(shield=True):
            try:
                await conn.execute("COMMIT")
            except BaseException:
                await self._rollback(conn)
                raise

    # ------------------------------------------------------------ reads

    async def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the reading connection: committed data only, never blocked."""
        # execute_fetchall: one trip to the reader's thread instead of execute+fetch+close.
        rows: Iterable[Any] = await self._reader.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]


async def _connect(target: str, config: StateConfig, *, uri: bool = False) -> aiosqlite.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; sqlite3's implicit
    # transactions would otherwise start one behind our back.
    conn = await aiosqlite.connect(target, isolation_level=None, uri=uri,
                                   timeout=config.busy_timeout_ms / 1000)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
        await conn.execute(f"PRAGMA synchronous = {config.sqlite_synchronous}")
    except BaseException:
        await conn.close()
        raise
    return conn
