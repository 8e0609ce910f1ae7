"""A task's own ast-grep rules, turned into searches that run in the jail.

Each writing reference action becomes a search for what it rewrites: an ``ast_grep_rule``
searches with its rule (the ``fix`` is ignored by a search), an ``ast_grep_run`` with its
pattern. What is left of those matches says how much of the asked-for change is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from agentd.records import AstGrepRule, AstGrepRun, AstGrepSearch, Match, Task
from agentd.sandbox import Sandbox


@dataclass(frozen=True)
class RuleMatches:
    """Matches of every rule of a task in one file set (None: that search failed)."""

    per_rule: tuple[tuple[Match, ...] | None, ...]

    @property
    def counts(self) -> tuple[int | None, ...]:
        return tuple(None if m is None else len(m) for m in self.per_rule)

    def lines(self, path: str) -> list[tuple[int, int]]:
        """(first, last) line of every match in ``path``, all rules together."""
        return [(m.start_line, m.end_line) for found in self.per_rule if found
                for m in found if m.file == path]


def rule_searches(task: Task) -> list[AstGrepSearch]:
    """One search per writing reference action, in order (the recipes of the task)."""
    out: list[AstGrepSearch] = []
    for action in task.reference_actions:
        if isinstance(action, AstGrepRule):
            out.append(AstGrepSearch(lang=task.language, rule_yaml=action.rule_yaml))
        elif isinstance(action, AstGrepRun) and action.rewrite is not None:
            out.append(AstGrepSearch(lang=action.lang, pattern=action.pattern))
    return out


def target_paths(task: Task) -> list[str]:
    """The files the task is about: its original files and its gold files."""
    return sorted({*task.files, *task.gold})


async def find_matches(sandbox: Sandbox, task: Task, files: Mapping[str, str]) -> RuleMatches:
    """Run every rule search of ``task`` on ``files`` in a fresh jailed workspace."""
    searches = rule_searches(task)
    paths = [p for p in target_paths(task) if p in files]
    if not searches or not paths:
        return RuleMatches(tuple(() for _ in searches))
    workspace = await sandbox.prepare_workspace(f"{task.task_id}-rules",
                                                {p: files[p] for p in paths})
    try:
        found: list[tuple[Match, ...] | None] = []
        for search in searches:
            action = AstGrepSearch(lang=search.lang, pattern=search.pattern,
                                   rule_yaml=search.rule_yaml, paths=paths)
            result = await sandbox.apply_action(workspace, action, task_id=task.task_id)
            clean = result.error_kind == "none" and result.exit_code in (0, 1)
            found.append(tuple(result.matches) if clean else None)
        return RuleMatches(tuple(found))
    finally:
        await sandbox.cleanup(workspace)


async def find_matches_in(sandbox: Sandbox, task: Task,
                          file_sets: Sequence[Mapping[str, str]]) -> list[RuleMatches]:
    """``find_matches`` of each file set, all searched in one jailed workspace (set ``i``
    under ``i/``): one jailed run per rule instead of one per rule and set. A search whose
    matches were cut at the sandbox's cap could split wrongly between the sets, so then each
    set is searched on its own."""
    searches = rule_searches(task)
    targets = target_paths(task)
    layout = {f"{i}/{p}": files[p] for i, files in enumerate(file_sets)
              for p in targets if p in files}
    if not searches or not layout or len(file_sets) < 2:
        return [await find_matches(sandbox, task, files) for files in file_sets]
    workspace = await sandbox.prepare_workspace(f"{task.task_id}-rules", layout)
    try:
        found: list[list[tuple[Match, ...] | None]] = [[] for _ in file_sets]
        for search in searches:
            action = AstGrepSearch(lang=search.lang, pattern=search.pattern,
                                   rule_yaml=search.rule_yaml, paths=sorted(layout))
            result = await sandbox.apply_action(workspace, action, task_id=task.task_id)
            if len(result.matches) >= sandbox.limits.max_matches or result.error:
                return [await find_matches(sandbox, task, files) for files in file_sets]
            clean = result.error_kind == "none" and result.exit_code in (0, 1)
            for i, per_set in enumerate(found):
                prefix = f"{i}/"
                per_set.append(tuple(
                    msgspec.structs.replace(m, file=m.file.removeprefix(prefix))
                    for m in result.matches if m.file.startswith(prefix)) if clean else None)
        return [RuleMatches(tuple(per_set)) for per_set in found]
    finally:
        await sandbox.cleanup(workspace)
