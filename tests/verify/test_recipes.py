"""For every recipe (and a rename, a two- and a three-step task): the gold is accepted, a
reformatted gold is accepted, an incomplete solution and an unrelated edit are rejected —
with the rule searches running in the real bwrap jail."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.config import SandboxConfig
from agentd.records import Task, Verdict
from agentd.sandbox import Sandbox
from agentd.verify import Verifier
from agentd.verify.syntax import dump

from . import mutations
from .recipe_tasks import fixture_tasks, recipe_ids, task_for

KINDS = [*recipe_ids(), "rename-function", "multi:2", "multi:3"]


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    sandbox = Sandbox(SandboxConfig(), workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
    return Verifier(sandbox)


def _with(task: Task, path: str, text: str) -> dict[str, str]:
    return {**task.files, **task.gold, path: text}


def _explain(verdict: Verdict) -> str:
    return f"{verdict.decided_by}: " + "; ".join(
        f"{c.name}={c.ok} {c.detail}" for c in verdict.checks)


def _first_gold_path(task: Task) -> str:
    return sorted(task.gold)[0]


class TestEveryRecipe:
    @pytest.mark.parametrize("kind", KINDS)
    async def test_gold_and_reformatted_gold_pass(self, verifier: Verifier, kind: str) -> None:
        """The gold, and the gold with other quotes, spaces, parentheses and line breaks
        where it changed the code, are both accepted as the gold's program."""
        task = await task_for(kind)
        gold = await verifier.verdict(task, {**task.files, **task.gold})
        assert gold.accepted and gold.decided_by == "ast_equivalent", _explain(gold)
        path = _first_gold_path(task)
        text = mutations.reformatted(task.files[path], task.gold[path])
        assert text != task.gold[path] and dump(text) == dump(task.gold[path])
        again = await verifier.verdict(task, _with(task, path, text))
        assert again.accepted and again.decided_by == "ast_equivalent", _explain(again)

    @pytest.mark.parametrize("kind", KINDS)
    async def test_incomplete_fails(self, verifier: Verifier, kind: str) -> None:
        """A solution that leaves part of the asked-for change undone is rejected because the
        task's rule still matches."""
        task = await task_for(kind)
        path = _first_gold_path(task)
        text = mutations.incomplete(task.files[path], task.gold[path])
        verdict = await verifier.verdict(task, _with(task, path, text))
        assert not verdict.accepted and verdict.decided_by == "rule_remaining", \
            _explain(verdict)

    @pytest.mark.parametrize("kind", KINDS)
    async def test_unrelated_edit_fails(self, verifier: Verifier, kind: str) -> None:
        """The gold plus a new statement among untouched ones is rejected as an unrelated
        edit, though every rule is satisfied."""
        task = await task_for(kind)
        path = next(p for p in sorted(task.gold)
                    if mutations.unrelated(task.files[p], task.gold[p]) is not None)
        text = mutations.unrelated(task.files[path], task.gold[path])
        assert text is not None
        verdict = await verifier.verdict(task, _with(task, path, text))
        assert not verdict.accepted and verdict.decided_by == "unrelated_edit", \
            _explain(verdict)


def test_fixture_covers_rename_and_multi_step() -> None:
    """The committed fixture holds real corpus tasks, a rename and multi-step tasks."""
    tasks = fixture_tasks()
    assert {"rename-function", "multi:2", "multi:3"} <= set(tasks)
    assert all(t.meta.dataset.startswith("cpython") for t in tasks.values())
