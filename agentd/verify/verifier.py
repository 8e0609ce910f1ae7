"""``Verifier``: the one code path that judges workspaces, for the engine and ``agentd verify``.

Its rule searches run in the real jail (``Sandbox.apply_action``), each on a fresh workspace
holding only the files being judged; the syntax checks run in a worker thread (whole-file
parsing takes tens of milliseconds on the largest tasks). What is known about a task (its
rule matches in the original and in the gold) is computed once and kept in a bounded cache,
and so are the rule matches and the measure of every file set judged lately: an episode's
first measure (the task's own files), a step that reverts to an earlier text, a workspace
equal to the gold and the final verdict right after the last step's measure need no second
jailed search.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Generic, TypeVar

import anyio
import msgspec

from agentd.records import Task, TestSpec, Verdict, VerdictCheck
from agentd.sandbox import Sandbox
from agentd.verify.measure import Measure, TaskFacts, gold_files, measure, task_facts
from agentd.verify.rules import RuleMatches, find_matches, find_matches_in, target_paths
from agentd.verify.verdict import decide, structural_checks, tests_check

FACTS_CACHE_SIZE = 256
MATCHES_CACHE_SIZE = 256
T = TypeVar("T")

_Key = tuple[str, tuple[tuple[str, str], ...]]  # a task's identity and (path, text) pairs
_IDENTITIES: OrderedDict[int, tuple[Task, str]] = OrderedDict()  # by id(task): see _identity
# It keeps whole tasks alive, so it stays small; a miss only costs the digest again.
IDENTITY_MEMO_SIZE = 64


class _Lru(Generic[T]):
    """A bounded least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[_Key, T] = OrderedDict()

    def get(self, key: _Key) -> T | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: _Key, value: T) -> None:
        self._items[key] = value
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class Verifier:
    """Measures workspaces against their task and gives final verdicts."""

    def __init__(self, sandbox: Sandbox, *, cache_size: int = FACTS_CACHE_SIZE) -> None:
        self.sandbox = sandbox
        self._facts: OrderedDict[str, TaskFacts] = OrderedDict()  # by _identity
        self._matches: _Lru[RuleMatches] = _Lru(MATCHES_CACHE_SIZE)
        self._measures: _Lru[Measure] = _Lru(MATCHES_CACHE_SIZE)
        self._cache_size = cache_size
        self.searches = 0  # jailed searches of file sets (the rest came from the cache)

    async def facts(self, task: Task) -> TaskFacts:
        """The task's own rule matches (original and gold) and allowed units, cached."""
        key = _identity(task)
        if key in self._facts:
            self._facts.move_to_end(key)
            return self._facts[key]
        before, gold = await self._find_both(task, task.files, gold_files(task))
        facts = await anyio.to_thread.run_sync(task_facts, task, before, gold)
        self._facts[key] = facts
        while len(self._facts) > self._cache_size:
            self._facts.popitem(last=False)
        return facts

    async def measure(self, task: Task, files: Mapping[str, str]) -> Measure:
        """``files`` (every file of a workspace) against ``task``."""
        key = (_identity(task), tuple(sorted(files.items())))
        known = self._measures.get(key)
        if known is not None:
            return known
        facts = await self.facts(task)
        found = await self._find(task, files)
        result = await anyio.to_thread.run_sync(functools.partial(
            measure, task, facts, dict(files), found))
        if all(m is not None for m in found.per_rule):  # a failed search may not fail again
            self._measures.put(key, result)
        return result

    async def _find(self, task: Task, files: Mapping[str, str]) -> RuleMatches:
        """The task's rule matches in ``files``: from the cache, or searched in the jail."""
        key = _matches_key(task, files)
        found = self._matches.get(key)
        if found is not None:
            return found
        found = await find_matches(self.sandbox, task, files)
        self.searches += 1
        if all(m is not None for m in found.per_rule):
            self._matches.put(key, found)
        return found

    async def _find_both(self, task: Task, a: Mapping[str, str],
                         b: Mapping[str, str]) -> tuple[RuleMatches, RuleMatches]:
        """Two file sets' rule matches, the unknown ones searched in one jailed run."""
        keys = [_matches_key(task, a), _matches_key(task, b)]
        known = [self._matches.get(k) for k in keys]
        if known[0] is not None and known[1] is not None:
            return known[0], known[1]
        found = await find_matches_in(self.sandbox, task, [a, b])
        self.searches += 1
        for key, matches in zip(keys, found, strict=True):
            if all(m is not None for m in matches.per_rule):
                self._matches.put(key, matches)
        return found[0], found[1]

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


def _matches_key(task: Task, files: Mapping[str, str]) -> _Key:
    return (_identity(task), tuple((p, files[p]) for p in target_paths(task) if p in files))


def _identity(task: Task) -> str:
    """The task's id and a digest of its content: a task rebuilt under the same id (a new
    corpus, a long-running daemon) is a different task to every cache here.

    An episode hands the same ``Task`` object to every measure, so the digest is kept per
    object (the entry holds the task, so its ``id`` cannot be reused while it is kept)."""
    kept = _IDENTITIES.get(id(task))
    if kept is not None and kept[0] is task:
        _IDENTITIES.move_to_end(id(task))
        return kept[1]
    digest = hashlib.blake2b(msgspec.json.encode(task), digest_size=12).hexdigest()
    identity = f"{task.task_id}@{digest}"
    _IDENTITIES[id(task)] = (task, identity)
    while len(_IDENTITIES) > IDENTITY_MEMO_SIZE:
        _IDENTITIES.popitem(last=False)
    return identity
