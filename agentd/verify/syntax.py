"""Python source compared as syntax, not bytes: parsing, AST equivalence, statement units.

A *unit* is one statement (or ``except``/``case`` clause) of a module, in source order,
nested ones included, represented by the ``ast.dump`` of its own part: a compound
statement's header without its body. Two texts that differ only in quotes, spacing,
redundant parentheses, line breaks or comments have the same units, so the unrelated-edit
check and the equivalence check never see formatting.
"""

from __future__ import annotations

import ast
import copy
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

_BODY_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")
_UNIT_TYPES = (ast.stmt, ast.excepthandler, ast.match_case)
PARSE_CACHE_SIZE = 128


@dataclass(frozen=True)
class Unit:
    """One statement's own part: its dump and the source lines of its header (1-based)."""

    key: str
    first_line: int
    last_line: int


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse(text: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in old code are not our business
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def parses(text: str) -> bool:
    """Whether ``text`` is valid Python."""
    return _parse(text) is not None


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def dump(text: str) -> str | None:
    """The normalised form of a module (None when it does not parse)."""
    tree = _parse(text)
    return None if tree is None else ast.dump(tree, annotate_fields=False)


def equivalent(a: str, b: str) -> bool:
    """Same program: equal ``ast.dump`` (formatting and comments ignored), or equal text."""
    if a == b:
        return True
    left = dump(a)
    return left is not None and left == dump(b)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def units(text: str) -> tuple[Unit, ...]:
    """The statement units of ``text`` in source order (empty when it does not parse)."""
    tree = _parse(text)
    if tree is None:
        return ()
    out: list[Unit] = []
    _collect(tree.body, out)
    return tuple(out)


def _collect(nodes: Sequence[ast.AST], out: list[Unit]) -> None:
    for node in nodes:
        if not isinstance(node, _UNIT_TYPES):
            continue
        out.append(_unit(node))
        for name in _BODY_FIELDS:
            children = getattr(node, name, None)
            if isinstance(children, list):
                _collect(children, out)


def _unit(node: ast.AST) -> Unit:
    head = copy.copy(node)
    children: list[ast.AST] = []
    for name in _BODY_FIELDS:
        value = getattr(node, name, None)
        if isinstance(value, list):
            children += [c for c in value if isinstance(c, _UNIT_TYPES)]
            setattr(head, name, [])
    key = ast.dump(head, annotate_fields=False)
    first = min([getattr(node, "lineno", 1),
                 *(d.lineno for d in getattr(node, "decorator_list", ()))])
    last = getattr(node, "end_lineno", None) or first
    if children:  # the header ends where the first nested statement starts
        last = max(first, min(getattr(c, "lineno", last) for c in children) - 1)
    return Unit(key, first, last)
