"""Fixtures for the engine: a queue on a real SQLite file shared with the state store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentd.config import StateConfig
from agentd.engine.queue import TaskQueue
from agentd.state import SqliteStateStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    s = await SqliteStateStore.open(tmp_path / "state.sqlite3", StateConfig())
    yield s
    await s.close()


@pytest.fixture
async def queue(store: SqliteStateStore) -> TaskQueue:
    return TaskQueue(store.db, boot_id="boot-a", lease_s=60, max_attempts=2)
