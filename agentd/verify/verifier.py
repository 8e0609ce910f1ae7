"""``Verifier``: the one code path that judges workspaces, for the engine and ``agentd verify``.

Its rule searches run in the real jail (``Sandbox.apply_action``), each on a fresh workspace
holding only the files being judged; the syntax checks run in a worker thread (whole-file
parsing takes tens of milliseconds on the largest tasks). What is known about a task (its
rule matches in the original and in the gold) is computed once and kept in a bounded cache.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping

import anyio

from agentd.records import Task, TestSpec, Verdict, VerdictCheck
from agentd.sandbox import Sandbox
from agentd.verify.measure import Measure, TaskFacts, gold_files, measure, task_facts
from agentd.verify.rules import find_matches
from agentd.verify.verdict import decide, structural_checks, tests_check

FACTS_CACHE_SIZE = 256


class Verifier:
    """Measures workspaces against their task and gives final verdicts."""

    def __init__(self, sandbox: Sandbox, *, cache_size: int = FACTS_CACHE_SIZE) -> None:
        self.sandbox = sandbox
        self._facts: OrderedDict[str, TaskFacts] = OrderedDict()
        self._cache_size = cache_size

    async def facts(self, task: Task) -> TaskFacts:
        """The task's own rule matches (original and gold) and allowed units, cached."""
        key = task.task_id
        if key in self._facts:
            self._facts.move_to_end(key)
            return self._facts[key]
        before = await find_matches(self.sandbox, task, task.files)
        gold = await find_matches(self.sandbox, task, gold_files(task))
        facts = await anyio.to_thread.run_sync(task_facts, task, before, gold)
        self._facts[key] = facts
        while len(self._facts) > self._cache_size:
            self._facts.popitem(last=False)
        return facts

    async def measure(self, task: Task, files: Mapping[str, str]) -> Measure:
        """``files`` (every file of a workspace) against ``task``."""
        facts = await self.facts(task)
        found = await find_matches(self.sandbox, task, files)
        return await anyio.to_thread.run_sync(functools.partial(
            measure, task, facts, dict(files), found))

    async def verdict(self, task: Task, files: Mapping[str, str]) -> Verdict:
        """The final verdict on ``files``; the task's tests run on a fresh workspace."""
        facts = await self.facts(task)
        m = await self.measure(task, files)
        checks = structural_checks(facts, m, dict(task.files))
        if task.test_spec is not None and all(c.ok for c in checks[:3]):
            checks.append(await self._tests(task, task.test_spec, files))
        return decide(checks)

    async def _tests(self, task: Task, spec: TestSpec, files: Mapping[str, str]) -> VerdictCheck:
        fresh = await self.sandbox.prepare_workspace(f"{task.task_id}-verify", dict(files))
        try:
            result = await self.sandbox.run_tests(fresh, spec, task_id=task.task_id)
        finally:
            await self.sandbox.cleanup(fresh)
        return tests_check(result)
