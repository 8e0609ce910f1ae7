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
import functools
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

CONTEXT = 3
GOLD_CACHE_SIZE = 64
LineChange = tuple[str, str]  # ("-" | "+", line text)


class Hunk(msgspec.Struct, frozen=True):
    """One gold hunk: the file and its after-side lines (context included)."""

    path: str
    after: tuple[str, ...]


class GoldDiff(msgspec.Struct, frozen=True):
    """What a task's gold changes: its hunks and, per file, its line changes."""

    hunks: tuple[Hunk, ...]
    changes: dict[str, Counter[LineChange]]


def gold_diff(before: Mapping[str, str], gold: Mapping[str, str]) -> GoldDiff:
    """The gold diff of a task, cached: every step of an episode scores against the same one.

    The key is the files' text; ``str`` caches its hash and the strings are the task's own
    objects, so a cache hit costs a few tuple comparisons, not a re-diff of 48 KiB files.
    """
    return _gold_diff(tuple(sorted(before.items())), tuple(sorted(gold.items())))


@functools.lru_cache(maxsize=GOLD_CACHE_SIZE)
def _gold_diff(
    before: tuple[tuple[str, str], ...], gold: tuple[tuple[str, str], ...]
) -> GoldDiff:
    old_files = dict(before)
    hunks = tuple(h for path, text in gold for h in _hunks(path, old_files.get(path, ""), text))
    changes = {path: line_changes(old_files.get(path, ""), text) for path, text in gold}
    return GoldDiff(hunks, changes)


def gold_hunks(before: Mapping[str, str], gold: Mapping[str, str]) -> list[Hunk]:
    """The hunks of ``before → gold`` for every gold file, in path and file order."""
    return list(gold_diff(before, gold).hunks)


def _hunks(path: str, old_text: str, new_text: str) -> list[Hunk]:
    old, new = old_text.splitlines(), new_text.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    hunks: list[Hunk] = []
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
    a, b = _trim_common(old.splitlines(), new.splitlines())
    changes: Counter[LineChange] = Counter()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            changes.update(("-", line) for line in a[i1:i2])
            changes.update(("+", line) for line in b[j1:j2])
    return changes


def _trim_common(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """Drop the common prefix and suffix: most edits are local and difflib is superlinear."""
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return a[start : len(a) - end], b[start : len(b) - end]


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
        if now != gold.get(path, old):
            wanted = gold_diff(before, gold).changes.get(path, Counter())
            unwanted += sum((made - wanted).values())
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
