"""From a ``Measure`` (and the task's tests, when it has them) to a ``Verdict``.

A final workspace is accepted when, in this order:

``parse``           every target file is there and parses;
``rule_remaining``  no rule of the task matches more often than in the gold (the asked-for
                    change is complete);
``unrelated_edit``  every changed statement is one the gold changes or a rule matches, and
                    no file was added (formatting never counts as a change);
``ast_equivalent``  the result is the gold's program (``ast.dump`` equality), **or**
``tests``           the task's tests pass on it in a fresh jailed workspace.

When the task has tests they always run (the fresh-sandbox re-verification), and a failure
rejects even a result equivalent to the gold. ``decided_by`` names the first check that
failed, or the one that accepted.
"""

from __future__ import annotations

from agentd.records import TestResult, Verdict, VerdictCheck
from agentd.verify.measure import Measure, TaskFacts, remaining
from agentd.verify.regions import unit_line

_DETAIL_ITEMS = 5


def structural_checks(facts: TaskFacts, m: Measure, before: dict[str, str]) -> list[VerdictCheck]:
    """The checks that need no test run: parse, rule_remaining, unrelated_edit, ast_equivalent."""
    return [_parse(m), _rules(facts, m), _unrelated(m, before),
            VerdictCheck("ast_equivalent", m.equivalent,
                         "" if m.equivalent else "not the gold's program (ast.dump differs)")]


def _parse(m: Measure) -> VerdictCheck:
    if not m.broken:
        return VerdictCheck("parse", True)
    return VerdictCheck("parse", False, "missing or unparsable: " + ", ".join(
        m.broken[:_DETAIL_ITEMS]))


def _rules(facts: TaskFacts, m: Measure) -> VerdictCheck:
    left = remaining(facts, m)
    problems = []
    for i, (now, gold) in enumerate(zip(left, facts.gold_counts, strict=True)):
        if now is None:
            problems.append(f"rule {i + 1}: the search failed")
        elif now > 0:
            problems.append(f"rule {i + 1}: {now} match(es) left beyond the gold's {gold}")
    return VerdictCheck("rule_remaining", not problems, "; ".join(problems))


def _unrelated(m: Measure, before: dict[str, str]) -> VerdictCheck:
    problems = [f"added {p}" for p in m.added[:_DETAIL_ITEMS]]
    for path, indices in sorted(m.unrelated.items()):
        lines = sorted({unit_line(before[path], i) for i in indices})[:_DETAIL_ITEMS]
        problems.append(f"{path}: statement(s) at line {', '.join(map(str, lines))}")
    return VerdictCheck("unrelated_edit", not problems, "; ".join(problems[:_DETAIL_ITEMS]))


def tests_check(result: TestResult) -> VerdictCheck:
    if result.passed:
        return VerdictCheck("tests", True, f"passed in {result.duration_ms:.0f} ms")
    why = "timed out" if result.timed_out else (
        result.error or f"exit code {result.exit_code}")
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
    return VerdictCheck("tests", False, f"{why}: {tail[0][:200]}".rstrip(": "))


def decide(checks: list[VerdictCheck]) -> Verdict:
    """The verdict of a list of checks (see the module docstring for the order)."""
    by_name = {c.name: c for c in checks}
    for name in ("parse", "rule_remaining", "unrelated_edit"):
        if not by_name[name].ok:
            return Verdict(False, name, checks)
    tests = by_name.get("tests")
    if tests is not None and not tests.ok:
        return Verdict(False, "tests", checks)
    if by_name["ast_equivalent"].ok:
        return Verdict(True, "ast_equivalent", checks)
    if tests is not None:
        return Verdict(True, "tests", checks)
    return Verdict(False, "ast_equivalent", checks)
