"""Which statements an edit touched, and whether they are the ones the task may touch.

Edits are compared as sequences of statement units (``syntax.units``), so a reformatted
statement is not an edit. The *allowed* units of a file are the ones the gold changes plus
the ones a rule of the task matches in the original: any correct solution edits inside
those, and a change anywhere else is an unrelated edit.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agentd.verify.syntax import Unit, units

TOUCHED_CACHE_SIZE = 256


@dataclass(frozen=True)
class Touched:
    """The units of the original an edit replaced or deleted, and where it inserted."""

    replaced: frozenset[int]
    inserted_at: frozenset[int]  # index of the original unit an insertion comes before

    @property
    def empty(self) -> bool:
        return not self.replaced and not self.inserted_at


@functools.lru_cache(maxsize=TOUCHED_CACHE_SIZE)
def touched(before: str, after: str) -> Touched:
    """The units of ``before`` that ``after`` changes (formatting is not a change); cached,
    as a measure asks it of the same pair once per file and again for the changed share."""
    if before == after:
        return Touched(frozenset(), frozenset())
    old, new = units(before), units(after)
    matcher = difflib.SequenceMatcher(None, [u.key for u in old], [u.key for u in new],
                                      autojunk=False)
    replaced: set[int] = set()
    inserted: set[int] = set()
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert":
            inserted.add(i1)
        replaced.update(range(i1, i2))
    return Touched(frozenset(replaced), frozenset(inserted))


def units_on_lines(before: str, lines: Iterable[tuple[int, int]]) -> frozenset[int]:
    """The units of ``before`` whose own lines overlap any (first, last) line range."""
    spans = list(lines)
    return frozenset(i for i, u in enumerate(units(before)) if _overlaps(u, spans))


def _overlaps(unit: Unit, spans: list[tuple[int, int]]) -> bool:
    return any(first <= unit.last_line and unit.first_line <= last for first, last in spans)


def allowed_units(before: str, gold: str, match_lines: Iterable[tuple[int, int]]) -> frozenset[int]:
    """Units an edit may touch: those the gold touches and those a rule matches."""
    gold_touch = touched(before, gold)
    around = {j for i in gold_touch.inserted_at for j in (i - 1, i)}
    return gold_touch.replaced | around | units_on_lines(before, match_lines)


def unrelated(before: str, after: str, allowed: frozenset[int]) -> list[int]:
    """Units of ``before`` that ``after`` touches outside ``allowed`` (sorted)."""
    edit = touched(before, after)
    bad = {i for i in edit.replaced if i not in allowed}
    bad |= {i for i in edit.inserted_at if i not in allowed and i - 1 not in allowed}
    return sorted(bad)


def unit_line(before: str, index: int) -> int:
    """The first line of unit ``index`` of ``before`` (the end of the file past the last)."""
    found = units(before)
    if index < len(found):
        return found[index].first_line
    return before.count("\n") + 1


def changed_share(before: Mapping[str, str], after: Mapping[str, str],
                  allowed: Mapping[str, frozenset[int]]) -> float:
    """Share of the touched units, over all files, that lie outside ``allowed``."""
    total = bad = 0
    for path, text in after.items():
        old = before.get(path, "")
        if old == text:
            continue
        edit = touched(old, text)
        total += len(edit.replaced) + len(edit.inserted_at)
        bad += len(unrelated(old, text, allowed.get(path, frozenset())))
    return bad / total if total else 0.0
