"""The verifier searches each file set in the jail once: the cache behind facts, measures
and verdicts (a second search of the same texts would only cost a jail run)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from agentd.config import SandboxConfig
from agentd.records import AstGrepRule, Match
from agentd.sandbox import Sandbox
from agentd.testing.tasks import make_task
from agentd.verify import Verifier
from agentd.verify.measure import gold_files
from agentd.verify.rules import RuleMatches, find_matches, find_matches_in

from .recipe_tasks import recipe_ids, task_for

KINDS = [*recipe_ids(), "rename-function", "multi:2", "multi:3"]


def verifier(tmp_path: Path) -> Verifier:
    sandbox = Sandbox(SandboxConfig(), workspaces_dir=tmp_path / "ws", log_dir=tmp_path / "logs")
    return Verifier(sandbox)


async def test_known_file_sets_are_not_searched_again(tmp_path: Path) -> None:
    v, task = verifier(tmp_path), make_task(1)
    await v.facts(task)
    assert v.searches == 1  # the original and the gold, in one jailed workspace
    first = await v.measure(task, task.files)
    final = await v.verdict(task, gold_files(task))
    assert v.searches == 1
    assert first.counts == (1,) and final.accepted
    [path] = task.files
    edited = {path: task.files[path] + "\nz = 1\n"}
    again = [await v.measure(task, dict(edited)) for _ in range(2)]
    assert v.searches == 2 and again[0] == again[1]


async def test_a_failed_search_is_not_remembered(tmp_path: Path) -> None:
    """A search that failed (here: a rule ast-grep refuses) is tried again next time."""
    v = verifier(tmp_path)
    bad_rule = ("id: x\nlanguage: python\nrule:\n  pattern: $A == None\n"
                "  kind: no_such_kind\nfix: y\n")
    task = msgspec.structs.replace(make_task(1), reference_actions=[AstGrepRule(
        rule_yaml=bad_rule)])
    first = await v.measure(task, task.files)
    searched = v.searches
    await v.measure(task, task.files)
    assert first.counts == (None,) and v.searches == searched + 1


@pytest.mark.parametrize("kind", KINDS)
async def test_one_workspace_finds_what_separate_searches_find(tmp_path: Path,
                                                               kind: str) -> None:
    """The original and the gold searched together give each set's own matches (every
    recipe, a rename and multi-step tasks)."""
    v, task = verifier(tmp_path), await task_for(kind)
    together = await find_matches_in(v.sandbox, task, [task.files, gold_files(task)])
    apart = [await find_matches(v.sandbox, task, files)
             for files in (task.files, gold_files(task))]
    assert [_sorted(m) for m in together] == [_sorted(m) for m in apart]
    assert any(count for count in apart[0].counts)  # the rules do match the original


def _sorted(found: RuleMatches) -> list[list[Match] | None]:
    return [None if ms is None else sorted(ms, key=lambda m: (m.file, m.start_line, m.text))
            for ms in found.per_rule]


async def test_a_task_rebuilt_under_the_same_id_is_judged_afresh(tmp_path: Path) -> None:
    """A long-running daemon serving a rebuilt corpus: same id, another gold, new facts."""
    v, task = verifier(tmp_path), make_task(1)
    [path] = task.files
    assert (await v.verdict(task, gold_files(task))).accepted
    rebuilt = msgspec.structs.replace(task, gold={path: task.files[path]})  # nothing to do
    assert not (await v.verdict(rebuilt, gold_files(task))).accepted
    assert v.searches == 3  # the rebuilt task's facts and its measure were searched anew


def test_a_task_is_digested_once_per_object_and_the_memo_is_bounded() -> None:
    """The identity every cache keys on: the same object answers from the memo, an equal
    copy (a new lease of the same task) gets the same identity, a rebuilt one another; the
    memo never holds more than IDENTITY_MEMO_SIZE tasks."""
    from agentd.verify import verifier as module

    task = make_task(1)
    first = module._identity(task)
    assert module._identity(task) == first
    copy = msgspec.json.decode(msgspec.json.encode(task), type=type(task))
    assert copy is not task and module._identity(copy) == first
    rebuilt = msgspec.structs.replace(task, files={p: t + "\n# rebuilt\n"
                                                    for p, t in task.files.items()})
    assert module._identity(rebuilt) != first
    for i in range(module.IDENTITY_MEMO_SIZE + 10):
        module._identity(make_task(i))
    assert len(module._IDENTITIES) == module.IDENTITY_MEMO_SIZE
