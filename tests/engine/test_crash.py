"""Exactly once through crashes: SIGKILL the engine at random moments, restart, compare."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import anyio
import pytest

from agentd.config import Settings
from agentd.datasets import write_tasks
from agentd.state import StateStore
from agentd.testing.tasks import make_task
from agentd.trajectories import iter_records
from agentd.trajectories.verify import verify_paths

TASKS = 600  # enough work that all 20 kills land before the run can finish
KILLS = 20


def _run(settings: Settings, run_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentd", "run", "--config", str(settings.config_path),
         "--run-id", run_id, "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the engine and its jailed children (they die with their parent anyway)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(settings: Settings) -> None:
    """20 SIGKILLs during one run: every step exactly once, every state row loadable."""
    cfg = settings.config_path
    cfg.write_text(cfg.read_text().replace("concurrency: 4", "concurrency: 2"))
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True)
    write_tasks(path, [make_task(i) for i in range(TASKS)])
    rng = random.Random(1234)
    kills = 0
    while kills < KILLS:
        proc = _run(settings, "crash")
        time.sleep(rng.uniform(0.3, 1.6))
        if proc.poll() is not None:
            break  # the run finished before we could kill it
        _kill_tree(proc)
        kills += 1
    final = _run(settings, "crash")
    assert final.wait(timeout=300) == 0
    assert kills == KILLS, "the run finished before it was killed 20 times"

    run_dir = settings.path(settings.agentd.paths.trajectories) / "crash"
    report = verify_paths([run_dir])
    assert report.ok, report.summary() + "".join(f"\n{p}" for p in report.problems)
    keys = Counter()
    for _, _, record in iter_records([run_dir]):
        assert not isinstance(record, Exception)
        keys[(record.task_id, record.episode, record.step)] += 1
    expected = {(f"task{i:04d}", 0, step) for i in range(TASKS) for step in (0, 1)}
    assert set(keys) == expected and set(keys.values()) == {1}
    anyio.run(_all_states_load, settings)


async def _all_states_load(settings: Settings) -> None:
    store = await StateStore.open(settings.path(settings.agentd.paths.database),
                                  settings.agentd.state)
    try:
        for i in range(TASKS):
            stored = await store.load("crash", f"task{i:04d}", 0)
            assert stored.version == 2 and stored.state.goals
    finally:
        await store.close()
