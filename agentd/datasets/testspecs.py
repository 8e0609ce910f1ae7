"""Give tasks a ``test_spec`` where CPython's own tests check their module — in the jail.

Per library module (cached: a module's spec serves all its tasks) the candidates from
``agentd.datasets.stdtests`` are tried in order, and the first one kept must

1. pass on the original module within ``max_seconds``, and
2. fail on the generic mutant (every function raises): the tests really import the
   workspace's copy, not the installed library.

Per task, the module's spec must then

3. pass on the task's gold (a refactoring recipe that changes behaviour is caught here), and
4. fail on the targeted mutant, the gold with its changed functions raising: the tests reach
   the code the task edits. A task whose changes all lie outside functions has no targeted
   mutant; the module-level check stands for it (counted as ``generic_only``).

Every run goes through the real ``Sandbox.run_tests`` on a fresh workspace that holds only
the task's files, exactly as the verifier will run it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import msgspec

from agentd.config import TaskTestsConfig
from agentd.datasets.mutants import break_all, break_changed
from agentd.datasets.stdtests import Candidate, Suite
from agentd.datasets.verify import run_spec
from agentd.logging import get_logger
from agentd.progress import Progress
from agentd.records import Task, TestResult, TestSpec
from agentd.sandbox import Sandbox

log = get_logger(__name__)
T = TypeVar("T")


@dataclass
class SpecReport:
    """What attaching specs did: counts for ``stats.json`` (``tests``)."""

    modules: Counter[str] = field(default_factory=Counter)  # per outcome
    tasks: Counter[str] = field(default_factory=Counter)  # per outcome
    gold_ms: list[float] = field(default_factory=list)  # one gold run per task with a spec

    def document(self) -> dict[str, object]:
        runs = sorted(self.gold_ms)
        return {
            "modules": dict(sorted(self.modules.items())),
            "tasks": dict(sorted(self.tasks.items())),
            "gold_run_ms": {"median": _quantile(runs, 0.5), "p90": _quantile(runs, 0.9),
                            "max": _quantile(runs, 1.0)},
        }


def _quantile(ordered: list[float], q: float) -> int:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0


@dataclass(frozen=True)
class ModulePlan:
    """What validating one module needs, computed up front (see ``plan_modules``)."""

    path: str
    text: str  # the original
    mutant: str | None  # the generic mutant; None: no function to break
    candidates: list[Candidate]


def plan_modules(suite: Suite, sources: dict[str, str], limit: int) -> list[ModulePlan]:
    """Candidates and generic mutants of every module, in one worker thread: CPython 3.11's
    ``ast`` is not safe to run in several threads at once (``SystemError: AST constructor
    recursion depth mismatch``), so all parsing happens here, one module after another."""
    return [ModulePlan(p, t, break_all(t), suite.candidates(p, limit))
            for p, t in sorted(sources.items())]


def targeted_mutants(tasks: Sequence[Task]) -> list[dict[str, str] | None]:
    """Per task, its files with the targeted mutant of every gold file (None: no change
    lies inside a function). One worker thread, for the reason given in ``plan_modules``."""
    out: list[dict[str, str] | None] = []
    for task in tasks:
        files = {**task.files, **task.gold}
        broken = False
        for path, gold in task.gold.items():
            mutant = break_changed(task.files.get(path, ""), gold)
            if mutant is not None:
                files[path], broken = mutant, True
        out.append(files if broken else None)
    return out


def failfast(spec: TestSpec) -> TestSpec:
    """``spec`` stopping at its first failure: a mutant only has to fail once, and a run
    of a large suite on a mutant otherwise costs as much as one on the gold."""
    return msgspec.structs.replace(spec, argv=[*spec.argv, "--failfast"])  # unittest's option


class SpecAttacher:
    """Validates candidate specs per module (each once) and then per task."""

    def __init__(self, sandbox: Sandbox, config: TaskTestsConfig) -> None:
        self.sandbox = sandbox
        self.config = config
        self.report = SpecReport()
        self.modules: dict[str, TestSpec] = {}  # bounded by the corpus's file count
        # A candidate on an original module is the installed library tested by its own
        # suite: the outcome is the candidate's, whichever module it was tried for, so it
        # runs once (many modules share one candidate, e.g. every email/* module test_email).
        self._originals: dict[str, str | None] = {}
        self._original_ms: dict[str, float] = {}
        self.original_ms: dict[str, float] = {}  # per module with a spec: its original run
        self._locks: dict[str, anyio.Lock] = {}

    def _limit(self, good: TestResult) -> str | None:
        if not good.passed:
            return "timeout" if good.timed_out else "fails"
        return "too_slow" if good.duration_ms > self.config.max_seconds * 1000 else None

    async def validate_module(self, plan: ModulePlan) -> TestSpec | None:
        """The first candidate that passes on the original in time and fails on the generic
        mutant. A candidate runs under twice ``max_seconds``: one that hangs costs no more."""
        why = "no_candidate" if not plan.candidates else "no_function"
        for cand in plan.candidates if plan.mutant is not None else []:
            quick = msgspec.structs.replace(cand.spec, timeout_s=2 * self.config.max_seconds)
            why = await self._original(cand.name, quick, plan) or "ok"
            if why == "ok":
                bad = await run_spec(self.sandbox, failfast(quick),
                                     {plan.path: plan.mutant or ""}, "spec-module")
                why = "mutant_passes" if bad.passed else "ok"
            log.debug("data.spec_module", path=plan.path, candidate=cand.name, outcome=why)
            if why == "ok":
                self.modules[plan.path] = cand.spec
                self.original_ms[plan.path] = self._original_ms[cand.name]
                self.report.modules["with_spec"] += 1
                return cand.spec
        self.report.modules[why] += 1
        return None

    async def _original(self, name: str, spec: TestSpec, plan: ModulePlan) -> str | None:
        async with self._locks.setdefault(name, anyio.Lock()):
            if name not in self._originals:
                good = await run_spec(self.sandbox, spec, {plan.path: plan.text}, "spec-module")
                self._originals[name] = self._limit(good)
                self._original_ms[name] = good.duration_ms
            return self._originals[name]

    async def task_spec(self, task: Task, mutant: dict[str, str] | None) -> TestSpec | None:
        """The module's spec if it also holds for this task: passes on its gold in time and
        fails on ``mutant`` (its targeted mutant; None: the module's check stands)."""
        spec = self.modules.get(task.meta.source_path)
        if spec is None:
            return None
        label = f"{task.task_id}-spec"
        good = await run_spec(self.sandbox, spec, {**task.files, **task.gold}, label)
        why = self._limit(good)
        if why is None and mutant is not None:
            bad = await run_spec(self.sandbox, failfast(spec), mutant, label)
            why = "mutant_passes" if bad.passed else None
        self.report.tasks[why or ("targeted" if mutant is not None else "generic_only")] += 1
        if why is not None:
            return None
        self.report.gold_ms.append(good.duration_ms)
        return spec


async def attach_specs(sandbox: Sandbox, suite: Suite, config: TaskTestsConfig,
                       tasks: Sequence[Task], sources: dict[str, str], *,
                       concurrency: int) -> tuple[list[Task], SpecReport]:
    """``tasks`` in their order, each with a validated spec where one was found.

    ``sources`` maps the source paths of ``config.dataset`` to their original text; tasks
    of other datasets are left alone. Modules are validated first (each once), then up to
    ``max_tasks_per_module`` tasks of each module, in the order given.
    ``concurrency`` bounds the modules or tasks in flight; the sandbox bounds jailed
    processes with its own limiter.
    """
    attacher = SpecAttacher(sandbox, config)
    plans = await anyio.to_thread.run_sync(
        plan_modules, suite, sources, config.max_candidates)
    await _each(plans, concurrency, "tests: modules", attacher.validate_module)
    per_module: Counter[str] = Counter()
    todo: list[int] = []
    for i, t in enumerate(tasks):
        if t.meta.dataset != config.dataset or t.meta.source_path not in attacher.modules:
            continue
        per_module[t.meta.source_path] += 1
        if per_module[t.meta.source_path] > config.max_tasks_per_module:
            attacher.report.tasks["over_module_cap"] += 1
            continue
        todo.append(i)
    mutants = await anyio.to_thread.run_sync(targeted_mutants, [tasks[i] for i in todo])
    out = list(tasks)

    async def one(item: tuple[int, dict[str, str] | None]) -> None:
        i, mutant = item
        spec = await attacher.task_spec(tasks[i], mutant)
        if spec is not None:
            out[i] = msgspec.structs.replace(tasks[i], test_spec=spec)

    await _each(list(zip(todo, mutants, strict=True)), concurrency, "tests: tasks", one)
    attacher.report.tasks["with_spec"] = sum(1 for t in out if t.test_spec is not None)
    return out, attacher.report


async def _each(items: Sequence[T], concurrency: int, label: str,
                work: Callable[[T], Awaitable[object]]) -> None:
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    bar = Progress(label, total=len(items))

    async def one(item: T) -> None:
        async with limiter:
            await work(item)
        bar.advance()

    try:
        async with anyio.create_task_group() as tg:
            for item in items:
                tg.start_soon(one, item)
    finally:
        bar.close()
