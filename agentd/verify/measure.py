"""What a file set is, measured against its task: pure functions over texts and match counts.

``TaskFacts`` are what the verifier knows once per task (the rule matches in the original and
in the gold, the units an edit may touch); a ``Measure`` is one workspace's state: which files
fail to parse, how many matches of each rule are left, whether it is the gold's program, and
which statements it changed that it should not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentd.records import Task
from agentd.verify.regions import allowed_units, changed_share, unrelated
from agentd.verify.rules import RuleMatches, target_paths
from agentd.verify.syntax import equivalent, parses


@dataclass(frozen=True)
class TaskFacts:
    """The task's side of every comparison, computed once per task."""

    gold_files: dict[str, str]  # the original files with the gold applied
    before_counts: tuple[int | None, ...]
    gold_counts: tuple[int | None, ...]
    allowed: dict[str, frozenset[int]]  # per file: the units an edit may touch


@dataclass(frozen=True)
class Measure:
    """One workspace's state against its task."""

    broken: list[str]  # target files missing or not parsing
    counts: tuple[int | None, ...]  # matches of each rule (None: the search failed)
    equivalent: bool  # the gold's program in every file, nothing added
    unrelated: dict[str, list[int]] = field(default_factory=dict)  # path -> units
    added: list[str] = field(default_factory=list)
    unrelated_share: float = 0.0


def gold_files(task: Task) -> dict[str, str]:
    return {**task.files, **task.gold}


def task_facts(task: Task, before: RuleMatches, gold: RuleMatches) -> TaskFacts:
    golden = gold_files(task)
    allowed = {p: allowed_units(text, golden.get(p, text), before.lines(p))
               for p, text in task.files.items() if _is_python(task)}
    return TaskFacts(golden, before.counts, gold.counts, allowed)


def measure(task: Task, facts: TaskFacts, files: Mapping[str, str],
            found: RuleMatches) -> Measure:
    """Measure ``files`` (every workspace file) against ``task``."""
    python = _is_python(task)
    broken = [p for p in target_paths(task)
              if p not in files or (python and files[p] != facts.gold_files.get(p)
                                    and not parses(files[p]))]
    added = sorted(p for p in files if p not in task.files and p not in task.gold)
    same = not added and all(
        p in files and (equivalent(files[p], text) if python else files[p] == text)
        for p, text in facts.gold_files.items())
    if not python or broken:
        return Measure(broken, found.counts, same and not broken, added=added,
                       unrelated_share=1.0 if broken else 0.0)
    bad = {p: unrelated(task.files[p], files[p], facts.allowed.get(p, frozenset()))
           for p in task.files if p in files}
    bad = {p: units for p, units in bad.items() if units}
    share = 1.0 if added else changed_share(task.files, files, facts.allowed)
    return Measure(broken, found.counts, same, bad, added, round(share, 6))


def remaining(facts: TaskFacts, m: Measure) -> list[int | None]:
    """Per rule: matches beyond what the gold itself leaves (None: unknown)."""
    out: list[int | None] = []
    for now, gold in zip(m.counts, facts.gold_counts, strict=True):
        out.append(None if now is None or gold is None else max(0, now - gold))
    return out


def progress(facts: TaskFacts, m: Measure) -> float:
    """Mean over the task's rules of the share of their original matches that are gone.

    Each recipe is measured against its own target (none of its matches left beyond the
    gold's), so an intermediate step of a multi-step task counts for the recipe it applies
    even when a later recipe rewrites the same lines again. A rule with nothing to do in the
    original (its matches only appear once an earlier recipe ran) is left out of the mean,
    but while any rule still has matches left progress stays below 1. A broken workspace
    has no progress; the gold's program has 1.
    """
    if m.broken:
        return 0.0
    if m.equivalent:
        return 1.0
    left = remaining(facts, m)
    shares: list[float] = []
    for now, start, gold in zip(left, facts.before_counts, facts.gold_counts, strict=True):
        initial = 0 if start is None or gold is None else max(0, start - gold)
        if now is None:
            shares.append(0.0)
        elif initial > 0:
            shares.append(1.0 - min(1.0, now / initial))
    if not shares:
        return 0.0
    value = sum(shares) / len(shares)
    if any(n is None or n > 0 for n in left):
        value = min(value, 1.0 - 1.0 / (2 * len(left)))
    return round(value, 6)


def _is_python(task: Task) -> bool:
    return task.language == "python"
