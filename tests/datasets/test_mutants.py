"""The known-bad edits that every test spec must catch (pure text functions)."""

from __future__ import annotations

import ast

from agentd.datasets.mutants import RAISE, break_all, break_changed, changed_lines

MODULE = (
    "def first(x):\n"
    '    """Doc."""\n'
    "    return x + 1\n"
    "\n"
    "class C:\n"
    "    def method(self):\n"
    "        def inner():\n"
    "            return 2\n"
    "        return inner()\n"
    "\n"
    "def one_liner(): return 3\n"
    "\n"
    "LIMIT = 4\n"
)


def _raising(text: str) -> set[str]:
    """Names of the functions whose first statement is the mutant's raise."""
    out = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and ast.unparse(node.body[0]) == RAISE:
            out.add(node.name)
    return out


def test_break_all_raises_in_every_function_with_a_body_line() -> None:
    mutant = break_all(MODULE)
    assert mutant is not None
    assert _raising(mutant) == {"first", "method", "inner"}  # a one-line def has no room
    namespace: dict[str, object] = {}
    exec(compile(mutant, "m", "exec"), namespace)
    assert namespace["LIMIT"] == 4  # module-level code is untouched: it still imports


def test_break_all_of_a_module_without_functions_is_none() -> None:
    assert break_all("X = 1\nY = 2\n") is None
    assert break_all("def broken(:\n") is None


def test_break_changed_targets_the_innermost_changed_function() -> None:
    gold = MODULE.replace("            return 2", "            return 1 + 1")
    mutant = break_changed(MODULE, gold)
    assert mutant is not None
    assert _raising(mutant) == {"inner"}


def test_break_changed_outside_functions_is_none() -> None:
    assert break_changed(MODULE, MODULE.replace("LIMIT = 4", "LIMIT = 2 + 2")) is None


def test_changed_lines_are_lines_of_the_after_text() -> None:
    assert changed_lines("a\nb\nc\n", "a\nB\nc\n") == {2}
    assert changed_lines("a\nb\nc\n", "a\nc\n") == {2}  # a deletion marks the next line
