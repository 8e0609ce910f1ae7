"""The agent's structured state: model, merge, render, token budget and the SQLite store.

Between steps an episode keeps no chat history, only a ``State``. Per step::

    stored = await store.load(run_id, task_id, episode)
    merged = merge(stored.state, output.state_update, caps)       # hostile input, never raises
    fitted = await fit_budget(merged.state, counter, caps.token_budget, caps=caps)
    async with store.transaction() as db:                         # with the step's other rows
        await store.save_in(db, run_id, task_id, episode, fitted.state, stored.version)
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
from agentd.state.merge import MergeResult, merge
from agentd.state.model import State, cap_state, clean_text, decode_state, encode_state
from agentd.state.render import render
from agentd.state.store import StateStore, StateStoreStatistics, StoredState

__all__ = [
    "EstimateCounter",
    "FitResult",
    "MeasuringCounter",
    "MergeResult",
    "RemoteTokenizeCounter",
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
