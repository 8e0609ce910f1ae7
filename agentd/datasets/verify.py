"""Sandbox verification of candidate tasks.

A task is kept only if its reference actions, run in the jailed sandbox from the
before-state, reproduce the gold after-state byte for byte — ``verify_runs`` times (two by
default), each in a fresh workspace. A task that matches once and then not again is
*flaky*; it is dropped like one that never matches, and both are counted by reason. A task
with a ``test_spec`` must also pass its tests on the gold, in a fresh workspace
(``tests_failed`` otherwise): that is how ``agentd data verify`` re-checks those tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio

from agentd.logging import get_logger
from agentd.progress import Progress
from agentd.records import Task, TestResult, TestSpec
from agentd.sandbox import Sandbox

log = get_logger(__name__)


def expected_after(task: Task) -> dict[str, str]:
    """Every workspace file after a correct solution: the before-state with gold applied."""
    return {**task.files, **task.gold}


async def run_reference(sandbox: Sandbox, task: Task, attempt: int) -> str | None:
    """Run the task's reference actions once; None if the result equals gold, else why."""
    ws: Path = await sandbox.prepare_workspace(f"{task.task_id}-verify{attempt}", task.files)
    try:
        for action in task.reference_actions:
            result = await sandbox.apply_action(ws, action, task_id=task.task_id)
            if not result.ok:
                return f"action_failed:{result.error_kind}"
        after = await sandbox.read_files(ws)
    finally:
        await sandbox.cleanup(ws)
    return None if after == expected_after(task) else "gold_mismatch"


async def run_spec(sandbox: Sandbox, spec: TestSpec, files: dict[str, str], label: str,
                   ) -> TestResult:
    """``spec``'s tests on a fresh workspace holding only ``files``."""
    ws = await sandbox.prepare_workspace(label, files)
    try:
        return await sandbox.run_tests(ws, spec, task_id=label)
    finally:
        await sandbox.cleanup(ws)


async def verify_task(sandbox: Sandbox, task: Task, runs: int) -> str | None:
    """None when every run reproduces gold (and the tests pass on it); else the drop reason."""
    for attempt in range(runs):
        why = await run_reference(sandbox, task, attempt)
        if why is not None:
            return "flaky" if attempt else why
    if task.test_spec is not None:
        result = await run_spec(sandbox, task.test_spec, expected_after(task),
                                f"{task.task_id}-tests")
        if not result.passed:
            return "tests_failed"
    return None


async def verify_all(sandbox: Sandbox, tasks: Sequence[Task], *, runs: int,
                     concurrency: int, drops: Counter[str],
                     label: str = "verify") -> list[Task]:
    """The tasks that verify, in their input order; ``drops`` counts the others by reason.

    ``concurrency`` bounds tasks in flight (workspaces on disk); the sandbox bounds jailed
    processes with its own limiter.
    """
    ok = [False] * len(tasks)
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    bar = Progress(label, total=len(tasks))

    async def one(i: int, task: Task) -> None:
        async with limiter:
            why = await verify_task(sandbox, task, runs)
        if why is None:
            ok[i] = True
        else:
            drops[why] += 1
            log.debug("data.verify_dropped", task_id=task.task_id, reason=why)
        bar.advance()

    try:
        async with anyio.create_task_group() as tg:
            for i, task in enumerate(tasks):
                tg.start_soon(one, i, task)
    finally:
        bar.close()
    return [t for t, good in zip(tasks, ok, strict=True) if good]
