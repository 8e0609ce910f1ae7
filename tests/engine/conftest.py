"""Fixtures for the engine: a queue on a real SQLite file shared with the state store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentd.config import StateConfig
from agentd.engine.queue import TaskQueue
from agentd.state import StateStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    s = await StateStore.open(tmp_path / "state.sqlite3", StateConfig())
    yield s
    await s.close()


@pytest.fixture
async def queue(store: StateStore) -> TaskQueue:
    q = TaskQueue(store.transaction, boot_id="boot-a", lease_s=60, max_attempts=2)
    await q.create_schema()
    return q
