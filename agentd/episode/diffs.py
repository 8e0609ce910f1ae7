"""Line diffs between file sets, as the reward sees them.

Two measures, both per file and line based (``str.splitlines``, so line endings and a missing
final newline do not count as changes; ``final_match`` compares exact text instead):

* **Gold hunks** — the unified-diff hunks of ``before → gold`` (``difflib``'s grouped opcodes
  with ``CONTEXT`` lines of context, exactly what ``diff -U3`` would print). A hunk is
  *present* in a workspace file when its after-side block (context included) occurs there as
  consecutive lines. Hunks of one file are matched in order, each after the previous match,
  so two identical hunks need two occurrences: that is the "at the right place" check. The
  context lines are unchanged lines of the original, so a hunk is recognised whether or not
  its neighbours have been applied yet (grouped hunks never share context lines).
* **Line changes** — the multiset of removed (``-``) and added (``+``) lines of
  ``before → current``. A change is *wanted* when the same change (same sign, same text, same
  file) is part of ``before → gold``; everything else is a regression.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

CONTEXT = 3
LineChange = tuple[str, str]  # ("-" | "+", line text)


class Hunk(msgspec.Struct, frozen=True):
    """One gold hunk: the file and its after-side lines (context included)."""

    path: str
    after: tuple[str, ...]


def gold_hunks(before: Mapping[str, str], gold: Mapping[str, str]) -> list[Hunk]:
    """The hunks of ``before → gold`` for every gold file, in path and file order."""
    hunks: list[Hunk] = []
    for path in sorted(gold):
        old, new = before.get(path, "").splitlines(), gold[path].splitlines()
        matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for group in matcher.get_grouped_opcodes(CONTEXT):
            if all(op[0] == "equal" for op in group):
                continue  # difflib yields one all-equal group for identical inputs
            hunks.append(Hunk(path, tuple(new[group[0][3] : group[-1][4]])))
    return hunks


def present_hunks(hunks: Sequence[Hunk], files: Mapping[str, str]) -> int:
    """How many ``hunks`` are present in ``files`` (in order, per file; see module doc)."""
    count = 0
    cursor: dict[str, int] = {}
    lines: dict[str, list[str]] = {}
    for hunk in hunks:
        if hunk.path not in lines:
            lines[hunk.path] = files.get(hunk.path, "").splitlines()
        found = _find_block(lines[hunk.path], hunk.after, cursor.get(hunk.path, 0))
        if found is not None:
            count += 1
            cursor[hunk.path] = found + len(hunk.after)
    return count


def _find_block(lines: list[str], block: tuple[str, ...], start: int) -> int | None:
    """First index ≥ ``start`` where ``block`` occurs as consecutive lines."""
    if not block:
        # Only a hunk that empties a whole file has no lines at all.
        return start if not lines else None
    size, first = len(block), block[0]
    for index in range(start, len(lines) - size + 1):
        if lines[index] == first and tuple(lines[index : index + size]) == block:
            return index
    return None


def line_changes(old: str, new: str) -> Counter[LineChange]:
    """Removed and added lines of ``old → new`` as a multiset."""
    a, b = old.splitlines(), new.splitlines()
    changes: Counter[LineChange] = Counter()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changes.update(("-", line) for line in a[i1:i2])
            changes.update(("+", line) for line in b[j1:j2])
    return changes


def unwanted_changes(
    before: Mapping[str, str], gold: Mapping[str, str], current: Mapping[str, str]
) -> tuple[int, int]:
    """``(unwanted, total)`` changed lines of ``before → current`` against the gold changes.

    A path absent from ``current`` is a deleted file (all its lines removed); a path absent
    from ``before`` is a new file.
    """
    unwanted = total = 0
    for path in sorted(set(before) | set(current)):
        old, now = before.get(path, ""), current.get(path, "")
        if now == old:
            continue
        made = line_changes(old, now)
        total += sum(made.values())
        target = gold.get(path, old)
        if now != target:
            unwanted += sum((made - line_changes(old, target)).values())
    return unwanted, total


def files_match(
    before: Mapping[str, str], gold: Mapping[str, str], current: Mapping[str, str]
) -> bool:
    """Every gold file is exactly its gold text and nothing else differs from ``before``."""
    if any(current.get(path) != text for path, text in gold.items()):
        return False
    if set(current) - set(before) - set(gold):
        return False
    return all(current.get(path) == text for path, text in before.items() if path not in gold)
