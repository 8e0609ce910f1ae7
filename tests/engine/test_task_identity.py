"""A task's identity includes its content: a rebuilt task is never run with stale files."""

from __future__ import annotations

import msgspec
import pytest

from agentd.engine.queue import TaskQueue
from agentd.errors import UsageError
from agentd.records import Task
from agentd.testing.tasks import make_task


def _rebuilt(task: Task) -> Task:
    """The same task id after a rebuild changed its file and its gold."""
    (path,) = task.files
    return msgspec.structs.replace(task, files={path: "x = 1\n"}, gold={path: "x = 2\n"})


class TestTaskIdentity:
    async def test_rebuilt_task_replaces_the_old_body(self, queue: TaskQueue) -> None:
        """Once no live episode uses the old version, a new run gets the rebuilt files."""
        old = make_task(1)
        await queue.submit("r1", [old], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        await queue.finish(lease)
        await queue.submit("r2", [_rebuilt(old)], episodes=1, policy="reference")
        [lease] = await queue.lease(1)
        assert lease.task == _rebuilt(old) and lease.run_id == "r2"

    async def test_live_old_version_refuses_new_body(self, queue: TaskQueue) -> None:
        """While a run still has the old version queued, a different body for the same id is
        refused, naming the task and the run; nothing of the refused chunk is queued."""
        old = make_task(1)
        await queue.submit("r1", [old], episodes=1, policy="reference")
        with pytest.raises(UsageError, match="task0001 differs from the version run r1"):
            await queue.submit("r2", [make_task(2), _rebuilt(old)], episodes=1,
                               policy="reference")
        assert (await queue.counts("r2"))["queued"] == 0
        [lease] = await queue.lease(1)
        assert lease.task == old

    async def test_same_body_is_accepted(self, queue: TaskQueue) -> None:
        """Submitting an unchanged task again, to another run, is fine."""
        await queue.submit("r1", [make_task(1)], episodes=1, policy="reference")
        assert await queue.submit("r2", [make_task(1)], episodes=1, policy="reference") == 1
