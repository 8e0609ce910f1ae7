"""Exactly once through crashes: SIGKILL the engine at random points of progress, restart."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from agentd.config import Settings
from agentd.datasets import write_tasks
from agentd.state import SqliteStateStore
from agentd.testing.tasks import make_task
from agentd.trajectories import iter_records
from agentd.trajectories.verify import verify_paths

TASKS = 600
STEPS = 2 * TASKS  # every made task is two steps
KILLS = 20
# Each kill waits for 1..MAX_GAP more committed steps, so all kills land within the first
# KILLS * MAX_GAP = 600 of 1,200 steps: half the work is still ahead at the last kill, far more
# than any machine commits between one poll of the database and the SIGKILL that follows it.
MAX_GAP = 30
STUCK_S = 300  # only a run that makes no progress at all takes this long


def _run(settings: Settings, run_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentd", "run", "--config", str(settings.config_path),
         "--run-id", run_id, "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_tree(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL the engine and its jailed children; return its exit status."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def committed_steps(database: Path, run_id: str) -> int:
    """Steps whose commit transaction is durable: one state version per step (read-only)."""
    if not database.exists():
        return 0
    uri = f"file:{database}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            row = db.execute("SELECT count(*) FROM state_versions WHERE run_id = ?",
                             (run_id,)).fetchone()
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0
    return int(row[0])


def _wait_for_steps(proc: subprocess.Popen[bytes], database: Path, target: int) -> None:
    deadline = time.monotonic() + STUCK_S
    while committed_steps(database, "crash") < target:
        assert proc.poll() is None, f"the run exited ({proc.returncode}) before step {target}"
        assert time.monotonic() < deadline, f"no progress to {target} steps in {STUCK_S}s"
        time.sleep(0.002)


@pytest.mark.timeout(900)
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(settings: Settings) -> None:
    """20 SIGKILLs at random points of progress: every step exactly once, every state loadable.

    Kills are placed by committed steps, never by the clock, so a fast machine cannot finish
    the run first and a slow one cannot make a kill land before the engine has started work.
    """
    cfg = settings.config_path
    cfg.write_text(cfg.read_text().replace("concurrency: 4", "concurrency: 2"))
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True)
    write_tasks(path, [make_task(i) for i in range(TASKS)])
    database = settings.path(settings.agentd.paths.database)
    rng = random.Random(1234)
    mid_run = 0
    for _ in range(KILLS):
        before = committed_steps(database, "crash")
        proc = _run(settings, "crash")
        _wait_for_steps(proc, database, before + rng.randint(1, MAX_GAP))
        status = _kill_tree(proc)
        after = committed_steps(database, "crash")
        assert status == -signal.SIGKILL, f"the run ended by itself ({status}) before the kill"
        mid_run += after < STEPS
    assert mid_run == KILLS, f"only {mid_run} of {KILLS} kills landed with work left"
    final = _run(settings, "crash")
    assert final.wait(timeout=STUCK_S) == 0

    run_dir = settings.path(settings.agentd.paths.trajectories) / "crash"
    report = verify_paths([run_dir])
    assert report.ok, report.summary() + "".join(f"\n{p}" for p in report.problems)
    keys = Counter()
    for _, _, record in iter_records([run_dir]):
        assert not isinstance(record, Exception)
        keys[(record.task_id, record.episode, record.step)] += 1
    expected = {(f"task{i:04d}", 0, step) for i in range(TASKS) for step in (0, 1)}
    assert set(keys) == expected and set(keys.values()) == {1}
    assert committed_steps(database, "crash") == STEPS
    anyio.run(_all_states_load, settings)


async def _all_states_load(settings: Settings) -> None:
    store = await SqliteStateStore.open(settings.path(settings.agentd.paths.database),
                                  settings.agentd.state)
    try:
        for i in range(TASKS):
            stored = await store.load("crash", f"task{i:04d}", 0)
            assert stored.version == 2 and stored.state.goals
    finally:
        await store.close()
