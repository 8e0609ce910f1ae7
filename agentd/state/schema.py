"""The database schema: every table agentd keeps in SQLite, its version and its migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; the version lives in
SQLite's ``user_version``. ``Database.open`` applies the missing ones in order, each in its
own transaction, and refuses a file written by a newer agentd (``SCHEMA_VERSION`` below its
version) instead of guessing. Version 1's statements all say ``IF NOT EXISTS``, so a file from
before versioning (version 0, tables present) upgrades in place.

The owners of the rows: ``states``/``state_versions`` — ``state.store``; ``tasks``/``queue`` —
``engine.queue``; ``outbox`` — ``engine.outbox``; ``episode_results``/``run_spend``/
``submissions`` — ``engine.results``.
"""

from __future__ import annotations

from typing import Final

_V1: Final = """
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

# The corpus version a task was submitted under (the provenance of its records). From this
# version on, ``queue.files`` holds only the files that differ from the task's own (a file set
# written by version 1 is a valid such delta: it names every file).
_V2: Final = "ALTER TABLE queue ADD COLUMN corpus_version TEXT NOT NULL DEFAULT '';"

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2)
"""DDL scripts, oldest first: index ``i`` upgrades version ``i`` to ``i + 1``. Append only."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
