"""SqliteStateStore on real SQLite files: CAS saves, shared transactions, audit trail,
settings."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from agentd.config import StateConfig
from agentd.errors import StateConflictError, StateError
from agentd.state import SqliteStateStore, State

# A table of another component (a step's other rows), committed with the state.
CALLER_ROWS = "CREATE TABLE IF NOT EXISTS caller_rows (id INTEGER PRIMARY KEY, payload TEXT)"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    s = await SqliteStateStore.open(tmp_path / "data" / "state.sqlite3", StateConfig())
    yield s
    await s.close()


async def caller_rows(store: SqliteStateStore) -> int:
    rows = await store.db.fetch_all("SELECT count(*) FROM caller_rows")
    return int(rows[0][0])


class TestLoadAndSave:
    async def test_absent_state_is_version_zero(self, store: SqliteStateStore) -> None:
        """Loading a key never saved gives an empty state at version 0."""
        got = await store.load("run", "task", 0)
        assert (got.state, got.version) == (State(), 0)

    async def test_round_trip_and_versions(self, store: SqliteStateStore) -> None:
        """Each save returns the next version and load returns what was saved."""
        assert await store.save("run", "t", 0, State(goals=["g"]), 0) == 1
        assert await store.save("run", "t", 0, State(goals=["g", "h"]), 1) == 2
        got = await store.load("run", "t", 0)
        assert (got.state, got.version) == (State(goals=["g", "h"]), 2)
        assert (await store.load("run", "t", 1)).version == 0  # episodes are separate rows
        assert (await store.load("other", "t", 0)).version == 0  # and runs

    async def test_stale_version_is_a_conflict(self, store: SqliteStateStore) -> None:
        """Saving against a version that is no longer current raises and changes nothing."""
        await store.save("r", "t", 0, State(goals=["first"]), 0)
        await store.save("r", "t", 0, State(goals=["second"]), 1)
        with pytest.raises(StateConflictError):
            await store.save("r", "t", 0, State(goals=["lost"]), 1)
        with pytest.raises(StateConflictError):
            await store.save("r", "t", 0, State(goals=["lost"]), 0)
        with pytest.raises(StateConflictError):
            await store.save("r", "t", 0, State(goals=["lost"]), 7)
        assert (await store.load("r", "t", 0)).state.goals == ["second"]
        assert store.statistics().conflicts == 3

    async def test_history_is_the_audit_trail(self, store: SqliteStateStore) -> None:
        """Every saved version is kept, oldest first, and a lost CAS leaves no trace."""
        for v in range(3):
            await store.save("r", "t", 0, State(next_focus=f"v{v + 1}"), v)
        with pytest.raises(StateConflictError):
            await store.save("r", "t", 0, State(next_focus="nope"), 1)
        trail = await store.history("r", "t", 0)
        assert [(s.version, s.state.next_focus) for s in trail] == [
            (1, "v1"), (2, "v2"), (3, "v3")
        ]
        assert [s.version for s in await store.history("r", "t", 0, limit=2)] == [2, 3]

    async def test_update_retries_conflicts(self, store: SqliteStateStore) -> None:
        """update() reloads and reapplies its change when another writer got there first."""
        await store.save("r", "t", 0, State(history=["a"]), 0)
        calls = 0

        def change(s: State) -> State:
            nonlocal calls
            calls += 1
            return State(history=[*s.history, f"c{calls}"])

        real_load = store.load

        async def racing_load(run_id: str, task_id: str, episode: int):  # type: ignore[no-untyped-def]
            got = await real_load(run_id, task_id, episode)
            if calls == 0:  # a competitor saves between our load and our save, once
                await store.save(run_id, task_id, episode, State(history=["x"]), got.version)
            return got

        store.load = racing_load  # type: ignore[method-assign]
        result = await store.update("r", "t", 0, change)
        assert result.version == 3
        assert result.state.history == ["x", "c2"]
        assert calls == 2

    async def test_negative_expected_version_is_refused(self, store: SqliteStateStore) -> None:
        """A negative version is a caller bug reported as StateError."""
        with pytest.raises(StateError):
            await store.save("r", "t", 0, State(), -1)

    async def test_latest_run_and_episodes(self, store: SqliteStateStore) -> None:
        """latest_run finds the run that last saved the task; episodes lists what exists."""
        await store.save("old", "t", 0, State(), 0)
        await asyncio.sleep(0.01)
        await store.save("new", "t", 0, State(), 0)
        await store.save("new", "t", 2, State(), 0)
        assert await store.latest_run("t", 0) == "new"
        assert await store.latest_run("t", 1) is None
        assert await store.episodes("t") == [0, 2]

    async def test_a_corrupt_row_is_a_state_error(self, store: SqliteStateStore) -> None:
        """A row that is not a state (edited by hand) fails loudly, naming the key."""
        await store.save("r", "t", 0, State(), 0)
        async with store.db.transaction() as db:
            await db.execute("UPDATE states SET state = '{\"goals\": 5}', version = 2")
        with pytest.raises(StateError, match=r"r/t/0 is corrupt"):
            await store.load("r", "t", 0)


class TestSettings:
    async def test_wal_and_connection_settings_from_config(self, tmp_path: Path) -> None:
        """The database is in WAL mode; synchronous and busy_timeout follow the config."""
        cfg = StateConfig(sqlite_synchronous="FULL", busy_timeout_ms=1234)
        async with await SqliteStateStore.open(tmp_path / "s.db", cfg) as s:
            async with s.db.transaction() as db:  # the writing connection
                async with db.execute("PRAGMA journal_mode") as cur:
                    assert (await cur.fetchone()) == ("wal",)
                async with db.execute("PRAGMA synchronous") as cur:
                    assert (await cur.fetchone()) == (2,)  # FULL
                async with db.execute("PRAGMA busy_timeout") as cur:
                    assert (await cur.fetchone()) == (1234,)
            assert await s.db.fetch_all("PRAGMA busy_timeout") == [(1234,)]  # the reader

    async def test_not_a_database_is_one_clear_error(self, tmp_path: Path) -> None:
        """Opening a file that is not SQLite raises StateError naming it."""
        bad = tmp_path / "bad.db"
        bad.write_bytes(b"this is not sqlite" * 100)
        with pytest.raises(StateError, match=r"bad\.db"):
            await SqliteStateStore.open(bad)

    async def test_reopen_keeps_data_and_schema_is_idempotent(self, tmp_path: Path) -> None:
        """Opening an existing store again finds its rows."""
        path = tmp_path / "s.db"
        async with await SqliteStateStore.open(path) as s:
            await s.save("r", "t", 0, State(goals=["kept"]), 0)
        async with await SqliteStateStore.open(path) as s:
            assert (await s.load("r", "t", 0)).state.goals == ["kept"]


class TestSharedTransactions:
    async def test_state_and_caller_rows_commit_together(self, store: SqliteStateStore) -> None:
        """save_in inside transaction(): the caller's rows and the state commit as one."""
        await store.db.execute(CALLER_ROWS)
        async with store.db.transaction() as db:
            version = await store.save_in(db, "r", "t", 0, State(goals=["g"]), 0)
            await db.execute("INSERT INTO caller_rows (payload) VALUES ('step 1')")
        assert version == 1
        assert (await store.load("r", "t", 0)).version == 1
        assert await caller_rows(store) == 1

    async def test_an_exception_rolls_back_both(self, store: SqliteStateStore) -> None:
        """If the caller fails after save_in, neither the state nor its rows are kept."""
        await store.db.execute(CALLER_ROWS)
        with pytest.raises(RuntimeError):
            async with store.db.transaction() as db:
                await store.save_in(db, "r", "t", 0, State(goals=["g"]), 0)
                await db.execute("INSERT INTO caller_rows (payload) VALUES ('step 1')")
                raise RuntimeError("sandbox exploded")
        assert (await store.load("r", "t", 0)).version == 0
        assert await caller_rows(store) == 0
        assert await store.history("r", "t", 0) == []

    async def test_a_conflict_rolls_back_the_callers_rows(self, store: SqliteStateStore) -> None:
        """A lost CAS inside a shared transaction discards the step's other rows too."""
        await store.db.execute(CALLER_ROWS)
        await store.save("r", "t", 0, State(), 0)
        with pytest.raises(StateConflictError):
            async with store.db.transaction() as db:
                await db.execute("INSERT INTO caller_rows (payload) VALUES ('step 1')")
                await store.save_in(db, "r", "t", 0, State(goals=["g"]), 0)
        assert await caller_rows(store) == 0

    async def test_save_in_outside_a_transaction_is_refused(self, store: SqliteStateStore) -> None:
        """save_in without transaction() would autocommit piecemeal, so it refuses."""
        async with aiosqlite.connect(store.db.path, isolation_level=None) as conn:
            with pytest.raises(StateError, match="transaction"):
                await store.save_in(conn, "r", "t", 0, State(), 0)

    async def test_cancellation_rolls_back_and_the_store_stays_usable(
        self, store: SqliteStateStore
    ) -> None:
        """A task cancelled inside a transaction leaves nothing behind and no lock held."""
        await store.db.execute(CALLER_ROWS)
        entered = asyncio.Event()

        async def step() -> None:
            async with store.db.transaction() as db:
                await store.save_in(db, "r", "t", 0, State(goals=["g"]), 0)
                entered.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(step())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await store.load("r", "t", 0)).version == 0
        assert await asyncio.wait_for(store.save("r", "t", 0, State(), 0), 5) == 1

    async def test_transactions_are_serialised(self, store: SqliteStateStore) -> None:
        """Two transactions never interleave on the shared connection."""
        await store.db.execute(CALLER_ROWS)
        order: list[str] = []

        async def txn(name: str) -> None:
            async with store.db.transaction() as db:
                order.append(f"{name}+")
                await db.execute("INSERT INTO caller_rows (payload) VALUES (?)", (name,))
                await asyncio.sleep(0.01)
                order.append(f"{name}-")

        await asyncio.gather(*(txn(n) for n in "abc"))
        assert order == ["a+", "a-", "b+", "b-", "c+", "c-"]

    async def test_other_components_see_the_same_file(self, store: SqliteStateStore) -> None:
        """Other components' tables live in the state database file."""
        await store.db.execute(CALLER_ROWS)
        async with store.db.transaction() as db:
            await db.execute("INSERT INTO caller_rows (payload) VALUES ('x')")

        def read() -> list[tuple[str]]:
            with sqlite3.connect(store.db.path) as conn:
                return conn.execute("SELECT payload FROM caller_rows").fetchall()

        assert await asyncio.to_thread(read) == [("x",)]

    async def test_the_connection_is_aiosqlite(self, store: SqliteStateStore) -> None:
        """The shared connection is the aiosqlite one the engine writes through."""
        async with store.db.transaction() as db:
            assert isinstance(db, aiosqlite.Connection)
