"""The agent's structured state (model, merge, render, token budget, the store) and the
``Database`` that owns agentd's SQLite file and its schema.

Between steps an episode keeps no chat history, only a ``State``. Per step::

    stored = await store.load(run_id, task_id, episode)
    merged = merge(stored.state, output.state_update, caps)       # hostile input, never raises
    fitted = await fit_budget(merged.state, counter, caps.token_budget, caps=caps)
    async with database.transaction() as conn:                    # with the step's other rows
        await store.save_in(conn, run_id, task_id, episode, fitted.state, stored.version)
    prompt_block = fitted.rendered
"""

from __future__ import annotations

from agentd.state.budget import (
    EstimateCounter,
    FitResult,
    MeasuringCounter,
    RemoteTokenizeCounter,
    Summariser,
    TokenCount,
    TokenCounter,
    TokenizerJsonCounter,
    counter_for,
    fit_budget,
    measure,
)
from agentd.state.database import Database, DatabaseStatistics
from agentd.state.merge import MergeResult, merge
from agentd.state.model import State, cap_state, clean_text, decode_state, encode_state
from agentd.state.render import render
from agentd.state.store import SqliteStateStore, StateStore, StateStoreStatistics, StoredState

__all__ = [
    "Database",
    "DatabaseStatistics",
    "EstimateCounter",
    "FitResult",
    "MeasuringCounter",
    "MergeResult",
    "RemoteTokenizeCounter",
    "SqliteStateStore",
    "State",
    "StateStore",
    "StateStoreStatistics",
    "StoredState",
    "Summariser",
    "TokenCount",
    "TokenCounter",
    "TokenizerJsonCounter",
    "cap_state",
    "clean_text",
    "counter_for",
    "decode_state",
    "encode_state",
    "fit_budget",
    "measure",
    "merge",
    "render",
]
