"""Solutions a person or a model might hand in, made from a task's gold.

* ``reformatted`` — the gold's program written differently where the gold changed it: other
  quotes, extra spaces inside brackets and after commas, a redundant pair of parentheses with
  line breaks inside around an expression;
* ``incomplete`` — the gold with its last changed region put back as it was (or, with one
  region, nothing done in that file);
* ``unrelated`` — the gold plus a new statement between two untouched top-level statements.
"""

from __future__ import annotations

import ast
import difflib
import io
import itertools
import tokenize

UNRELATED_LINE = "_agentd_unrelated_edit = 1\n"
_SPACE_AFTER = {"(", "[", ","}
_SPACE_BEFORE = {")", "]", ":"}


def gold_lines(before: str, gold: str) -> set[int]:
    """1-based lines of ``gold`` that differ from ``before``."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), gold.splitlines(),
                                      autojunk=False)
    return {j + 1 for tag, _i1, _i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
            for j in range(j1, j2)}


def _swap_quotes(token: str) -> str:
    prefix_len = len(token) - len(token.lstrip("rbuRBUfF"))
    prefix, body = token[:prefix_len], token[prefix_len:]
    if len(body) < 2 or body[:3] in ("'''", '"""') or body[0] != body[-1]:
        return token
    inner = body[1:-1]
    if any(c in inner for c in "'\"\\"):
        return token
    other = '"' if body[0] == "'" else "'"
    return f"{prefix}{other}{inner}{other}"


def _respaced(text: str, lines: set[int]) -> str:
    """Quotes swapped and spaces added on ``lines`` (token by token, columns only)."""
    rows = text.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, int, str]]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        (row, col), (erow, ecol) = tok.start, tok.end
        if row not in lines or row != erow:
            continue
        new = tok.string
        if tok.type == tokenize.STRING:
            new = _swap_quotes(new)
        elif tok.type == tokenize.OP and tok.string in _SPACE_AFTER:
            new += " "
        elif tok.type == tokenize.OP and tok.string in _SPACE_BEFORE:
            new = " " + new
        if new != tok.string:
            edits.setdefault(row, []).append((col, ecol, new))
    for row, changes in edits.items():
        line = rows[row - 1]
        for col, ecol, new in sorted(changes, reverse=True):
            line = line[:col] + new + line[ecol:]
        rows[row - 1] = line
    return "".join(rows)


def _wrappable(tree: ast.Module, lines: set[int]) -> ast.expr | None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.lineno not in lines:
            continue
        target = getattr(node, "value", None) if isinstance(
            node, ast.Assign | ast.AugAssign | ast.Return | ast.Expr) else getattr(
            node, "test", None) if isinstance(node, ast.If | ast.While) else None
        if isinstance(target, ast.expr) and target.end_lineno is not None:
            return target
    return None


def _wrap(text: str, node: ast.expr) -> str:
    """``node``'s source in parentheses with line breaks inside (UTF-8 column offsets)."""
    rows = [r.encode() for r in text.splitlines(keepends=True)]
    end_row, end_col = (node.end_lineno or node.lineno) - 1, node.end_col_offset or 0
    rows[end_row] = rows[end_row][:end_col] + b"\n)" + rows[end_row][end_col:]
    row, col = node.lineno - 1, node.col_offset
    rows[row] = rows[row][:col] + b"(\n" + rows[row][col:]
    return b"".join(rows).decode()


def reformatted(before: str, gold: str) -> str:
    """The gold's program, formatted differently where the gold changed it."""
    lines = gold_lines(before, gold)
    text = _respaced(gold, lines)
    node = _wrappable(ast.parse(text), lines)
    return text if node is None else _wrap(text, node)


def incomplete(before: str, gold: str) -> str:
    """The gold with its last changed region restored (the original when there is one)."""
    old, new = before.splitlines(keepends=True), gold.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    changed = [op for op in ops if op[0] != "equal"]
    if len(changed) < 2:
        return before
    out: list[str] = []
    last = changed[-1]
    for tag, i1, i2, j1, j2 in ops:
        out += old[i1:i2] if tag == "equal" or (tag, i1, i2, j1, j2) == last else new[j1:j2]
    return "".join(out)


def unrelated(before: str, gold: str) -> str | None:
    """The gold plus one new statement between two neighbouring statements the gold leaves
    untouched (top level first, then nested blocks); None when there are none."""
    changed = gold_lines(before, gold)

    def first(node: ast.stmt) -> int:
        return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])

    def clean(node: ast.stmt) -> bool:
        span = set(range(first(node), (node.end_lineno or node.lineno) + 1))
        return not span & changed and not (isinstance(node, ast.ImportFrom)
                                           and node.module == "__future__")

    tree = ast.parse(gold)
    blocks = [tree.body, *(n.body for n in ast.walk(tree)
                           if not isinstance(n, ast.Module)
                           and isinstance(getattr(n, "body", None), list))]
    rows = gold.splitlines(keepends=True)
    for block in blocks:
        for prev, node in itertools.pairwise(block):
            if clean(prev) and clean(node):
                line = " " * node.col_offset + UNRELATED_LINE
                return "".join([*rows[:first(node) - 1], line, *rows[first(node) - 1:]])
    for block in blocks:  # no such pair: after the last statement of an untouched block
        if block and clean(block[-1]):
            end = block[-1].end_lineno or block[-1].lineno
            line = " " * block[-1].col_offset + UNRELATED_LINE
            return "".join([*rows[:end], line, *rows[end:]])
    return None
