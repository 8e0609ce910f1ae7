"""``agentd state dump TASK_ID [--episode N] [--run-id ID]``: print a task's stored state."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import anyio

from agentd.config import StateConfig, load_settings
from agentd.errors import UsageError
from agentd.state.render import render
from agentd.state.store import SqliteStateStore, StoredState


def dump_command(args: argparse.Namespace) -> int:
    """Print the state as JSON, a blank line, then the rendered ``<state>`` block."""
    settings = load_settings(args.config)
    db = settings.path(settings.agentd.paths.database)
    if not db.is_file():
        raise UsageError(f"no state database at {db}")
    text = anyio.run(_dump, db, settings.agentd.state, args.task_id, args.episode, args.run_id)
    print(text)
    return 0


async def _dump(
    db: Path, config: StateConfig, task_id: str, episode: int, run_id: str | None
) -> str:
    async with await SqliteStateStore.open(db, config, read_only=True) as store:
        run = run_id or await store.latest_run(task_id, episode)
        stored = await store.load(run, task_id, episode) if run else None
        if run is None or stored is None or stored.version == 0:
            raise UsageError(await _missing(store, task_id, episode, run_id))
    return json.dumps(_as_json(run, task_id, episode, stored), indent=2) + "\n\n" + render(
        stored.state
    )


async def _missing(store: SqliteStateStore, task_id: str, episode: int, run_id: str | None) -> str:
    where = f" in run {run_id}" if run_id else ""
    known = await store.episodes(task_id)
    hint = f" (episodes with state: {', '.join(map(str, known))})" if known else ""
    return f"no state for task {task_id} episode {episode}{where}{hint}"


def _as_json(run_id: str, task_id: str, episode: int, stored: StoredState) -> dict[str, Any]:
    when = stored.updated_at
    return {
        "run_id": run_id,
        "task_id": task_id,
        "episode": episode,
        "version": stored.version,
        "updated_at": dt.datetime.fromtimestamp(when, dt.UTC).isoformat() if when else None,
        "state": stored.state.to_dict(),
    }
