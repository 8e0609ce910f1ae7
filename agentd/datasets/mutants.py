"""Known-bad edits of a module, to prove that a test spec can fail.

A spec that passes on the gold proves little by itself: the tests might not import the
workspace's copy of the module at all, or never reach the code the task changes. So each
spec must also *fail* on a mutant: the same module with ``raise RuntimeError`` as the first
statement of functions. The generic mutant breaks every function (the tests exercise the
workspace's module); the targeted one breaks only the functions that enclose the lines a
task's gold changed (the tests exercise the task's edit). Pure text functions.
"""

from __future__ import annotations

import ast
import difflib
import warnings
from collections.abc import Iterable

RAISE = "raise RuntimeError('agentd mutant')"
_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _parse(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes in old code
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _functions(tree: ast.Module) -> Iterable[_Function]:
    return (n for n in ast.walk(tree) if isinstance(n, _Function))


def _insert_raises(text: str, functions: Iterable[_Function]) -> str | None:
    """``text`` with a raise before the first body statement of each function; None when no
    function has a body on a line of its own (nothing could be broken)."""
    lines = text.splitlines(keepends=True)
    at: set[int] = set()
    for fn in functions:
        first = fn.body[0]
        if first.lineno == fn.lineno:  # ``def f(): ...`` on one line: no room for a raise
            continue
        line = lines[first.lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
        if len(indent.encode("utf-8")) != first.col_offset:  # after ``;``: not at line start
            continue
        at.add(first.lineno - 1)
    if not at:
        return None
    for index in sorted(at, reverse=True):
        line = lines[index]
        indent = line[: len(line) - len(line.lstrip())]
        lines.insert(index, f"{indent}{RAISE}\n")
    return "".join(lines)


def break_all(text: str) -> str | None:
    """Every function of the module raises; None when the module has none to break."""
    tree = _parse(text)
    return None if tree is None else _insert_raises(text, _functions(tree))


def changed_lines(before: str, after: str) -> set[int]:
    """1-based lines of ``after`` that differ from ``before`` (or border a deletion)."""
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(),
                                      autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.update(range(j1 + 1, max(j2, j1 + 1) + 1))
    return out


def break_changed(before: str, gold: str) -> str | None:
    """The gold with a raise in the innermost functions enclosing its changed lines; None
    when no change lies inside a function (the generic mutant is then the only check)."""
    tree = _parse(gold)
    if tree is None:
        return None
    changed = changed_lines(before, gold)
    hit: dict[int, _Function] = {}
    for fn in _functions(tree):
        span = range(fn.body[0].lineno, (fn.end_lineno or fn.lineno) + 1)
        for line in changed.intersection(span):
            inner = hit.get(line)
            if inner is None or inner.lineno < fn.lineno:  # ast.walk: outer before inner
                hit[line] = fn
    return _insert_raises(gold, {id(f): f for f in hit.values()}.values())
