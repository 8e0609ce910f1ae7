"""Database: the one owner of the SQLite file — schema version, migrations, read-only opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentd.engine.results import routed_submissions
from agentd.errors import StateError
from agentd.state import Database, SqliteStateStore, State
from agentd.state.schema import MIGRATIONS, SCHEMA_VERSION


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


class TestSchema:
    async def test_a_new_file_gets_every_table_at_the_current_version(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "db" / "state.sqlite3"
        async with await Database.open(path) as db:
            assert await db.schema_version() == SCHEMA_VERSION
        assert {"states", "state_versions", "tasks", "queue", "outbox", "episode_results",
                "run_spend", "submissions"} <= tables(path)
        assert user_version(path) == SCHEMA_VERSION == len(MIGRATIONS)

    async def test_an_older_file_is_migrated_in_place_keeping_its_rows(
        self, tmp_path: Path
    ) -> None:
        """A file at version 1 (its queue rows without a corpus version) opens at the
        current version with its queue rows and states intact."""
        path = tmp_path / "state.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
            conn.execute("INSERT INTO queue(run_id, task_id, episode, policy, status,"
                         " enqueued_at, updated_at) VALUES ('r', 't', 0, 'reference',"
                         " 'queued', 1, 1)")
        async with await SqliteStateStore.open(path) as store:
            await store.save("r", "t", 0, State(goals=["g"]), 0)
            rows = await store.db.fetch_all("SELECT run_id, corpus_version FROM queue")
        assert rows == [("r", "")]
        assert user_version(path) == SCHEMA_VERSION

    async def test_a_file_from_before_versioning_upgrades(self, tmp_path: Path) -> None:
        """Version 0 with the tables present (agentd before schema versions) opens."""
        path = tmp_path / "state.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.executescript(MIGRATIONS[0])
        async with await Database.open(path) as db:
            assert await db.schema_version() == SCHEMA_VERSION

    async def test_a_newer_file_is_refused_and_left_alone(self, tmp_path: Path) -> None:
        """A file written by a newer agentd is never guessed at: one clear error."""
        path = tmp_path / "state.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(StateError, match=r"newer than this agentd"):
            await Database.open(path)
        with pytest.raises(StateError, match=r"newer than this agentd"):
            await Database.open(path, read_only=True)
        assert user_version(path) == SCHEMA_VERSION + 1 and tables(path) == set()

    async def test_a_failed_migration_leaves_the_older_version(self, tmp_path: Path) -> None:
        """A migration whose DDL fails rolls back whole: the version does not move."""
        path = tmp_path / "state.sqlite3"
        with sqlite3.connect(path) as conn:
            conn.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
            # The column migration 2 adds, already there: its ALTER TABLE fails.
            conn.execute("ALTER TABLE queue ADD COLUMN corpus_version TEXT")
        with pytest.raises(StateError, match="cannot open"):
            await Database.open(path)
        assert user_version(path) == 1


class TestReadOnly:
    async def test_read_only_never_creates_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.sqlite3"
        with pytest.raises(StateError, match="no database"):
            await Database.open(path, read_only=True)
        assert not path.exists()

    async def test_read_only_reads_and_refuses_writes(self, tmp_path: Path) -> None:
        path = tmp_path / "state.sqlite3"
        async with await SqliteStateStore.open(path) as store:
            await store.save("r", "t", 0, State(goals=["kept"]), 0)
        async with await SqliteStateStore.open(path, read_only=True) as store:
            assert (await store.load("r", "t", 0)).state.goals == ["kept"]
            with pytest.raises(StateError, match="read-only"):
                await store.save("r", "t", 0, State(), 1)
            with pytest.raises(StateError, match="read-only"):
                async with store.db.transaction():
                    pass

    async def test_the_routing_query_needs_no_daemon_and_no_file(self, tmp_path: Path) -> None:
        """The report's query: nothing for a missing file, the routed rows otherwise."""
        path = tmp_path / "state.sqlite3"
        assert await routed_submissions(path) == []
        async with await Database.open(path) as db:
            await db.execute(
                "INSERT INTO submissions(run_id, policy, split, route, min_failures, tasks,"
                " episodes, submitted_at) VALUES ('t1', 'teacher', 'dev', 'actor_failed', 2,"
                " 5, 5, 1), ('a1', 'actor', 'dev', NULL, NULL, 9, 9, 0)")
        [routed] = await routed_submissions(path)
        assert (routed.run_id, routed.route, routed.min_failures, routed.tasks) == \
            ("t1", "actor_failed", 2, 5)


class TestSingleStatementWrites:
    async def test_write_commits_alone_and_returns_its_rows(self, tmp_path: Path) -> None:
        """``write`` is its own transaction: the reading connection sees it at once, and a
        RETURNING clause's rows come back (none without one); a read-only file refuses it."""
        path = tmp_path / "state.sqlite3"
        async with await Database.open(path) as db:
            before = db.statistics().transactions
            rows = await db.write("INSERT INTO run_spend(run_id, cost_usd, tokens)"
                                  " VALUES ('r', 1.5, 7) RETURNING run_id, tokens")
            assert rows == [("r", 7)]
            assert await db.write("UPDATE run_spend SET tokens = 8 WHERE run_id = 'r'") == []
            assert await db.fetch_all("SELECT tokens FROM run_spend") == [(8,)]
            assert db.statistics().transactions == before  # no BEGIN/COMMIT around it
        async with await Database.open(path, read_only=True) as db:
            with pytest.raises(StateError, match="read-only"):
                await db.write("DELETE FROM run_spend")
