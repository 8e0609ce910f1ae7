"""Merge a model's ``<state_update>`` into the state: hostile input in, a capped state out.

The update is a JSON object (or its raw text); every key is optional::

    field                         value                              effect
    goals, constraints            "text" | ["text", …]               append new items; when the
                                                                     list is full they are refused
    decisions, hypotheses,        "text" | ["text", …]               append; an item already there
    open_issues                                                      moves to the end (refreshed);
                                                                     when full the oldest is evicted
    any list field                {"add": [...], "remove": [...]}    remove named items, then add
                                                                     (an item in both stays)
    history                       "text" | ["text", …]               append (refresh like above) and
                                                                     keep the last ``history_max``
    next_focus                    "text" | "" | null                 replace; "" or null clears

Items are compared after normalisation (one line, spacing collapsed) and case-folded, so
"Fix  imports" and "fix imports" are one item. Removal is an explicit object key, not a
``"-"`` prefix, because models write Markdown bullets and "- keep x" must never delete "keep x".
Every item goes through ``clean_text``: longer than ``item_max_chars`` is cut (and noted),
hidden characters are dropped, the protocol's tags are defused.

Idempotence: applying the same update twice gives the same state as applying it once. That is
why a refreshed item moves to the end instead of staying put (otherwise a second application
would evict differently), and why an update that names more items than a list can hold keeps
only its last ``list_max_items`` (its first, for the anchor lists).

Hostile input is data, never an exception: unknown fields, wrong types, huge strings, deep
nesting (no value is ever walked below the item level) and 10,000-item lists are refused with
a short note each; the work per update is bounded by the caps, not by the input's size.
"""

from __future__ import annotations

from typing import Final

import msgspec

from agentd.config import StateConfig
from agentd.state.model import (
    ALL_FIELDS,
    KEEP_FIRST,
    LIST_FIELDS,
    State,
    cap_state,
    clean_text,
    dedupe_key,
)

MAX_UPDATE_BYTES: Final = 64 * 1024
"""Raw update text longer than this is refused without parsing."""
MAX_KEYS: Final = 32
"""Top-level keys looked at; a model that writes thousands gets one note."""
MAX_NOTES: Final = 32
"""Rejection notes kept per merge; the rest are counted in a final note."""
NOTE_SNIPPET: Final = 40


class MergeResult(msgspec.Struct, frozen=True):
    """The merged state and what happened to the update."""

    state: State
    rejected: list[str]
    """Short notes on what of the update was refused or cut."""
    evicted: list[str] = msgspec.field(default_factory=list)
    """Items that the update pushed out of a full list."""
    changed: bool = False


class _Notes:
    """Bounded list of notes: a hostile update cannot make the record of its rejection huge."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.overflow = 0

    def add(self, note: str) -> None:
        if len(self.items) < MAX_NOTES:
            self.items.append(note[:160])
        else:
            self.overflow += 1

    def done(self) -> list[str]:
        tail = [f"… and {self.overflow} more notes"] if self.overflow else []
        return [*self.items, *tail]


def snippet(text: str) -> str:
    """A short quoted excerpt for notes."""
    cut = text[:NOTE_SNIPPET]
    return repr(cut + "…" if len(text) > NOTE_SNIPPET else cut)


def merge(existing: State, update: object, caps: StateConfig, *,
          history: str | None = None) -> MergeResult:
    """Merge ``update`` (parsed JSON, raw JSON text, or None) into ``existing``; never raises.

    ``history`` is a line of the caller's own (the runner's record of the step), appended
    after the update in the same pass, whatever became of the update.
    """
    run = _Merge(caps)
    base = cap_state(existing, caps)
    try:
        state = run.apply(base, run.fields(update))
    except Exception as exc:  # a bug here must cost one step's update, not the episode
        run.notes.add(f"update: internal error {type(exc).__name__}; update ignored")
        state, run.evicted = base, []
    if history is not None:
        try:
            lines = run.list_field("history", state.history, [history])
            state = msgspec.structs.replace(state, history=lines)
        except Exception as exc:  # the same promise for the caller's line
            run.notes.add(f"history: internal error {type(exc).__name__}; line ignored")
    return MergeResult(state=state, rejected=run.notes.done(), evicted=run.evicted,
                       changed=state != existing)


class _Merge:
    """One merge: the caps, and the notes it collects on the way."""

    def __init__(self, caps: StateConfig) -> None:
        self.caps = caps
        self.notes = _Notes()
        self.evicted: list[str] = []

    def fields(self, update: object) -> dict[str, object]:
        """The update's known fields; everything else becomes a note."""
        if isinstance(update, bytes | bytearray | str):
            update = self._decode(update)
        if update is None:
            return {}
        if not isinstance(update, dict):
            self.notes.add(f"update: expected an object, got {type(update).__name__}")
            return {}
        known: dict[str, object] = {}
        for i, (key, value) in enumerate(update.items()):
            if i == MAX_KEYS:
                extra = len(update) - MAX_KEYS
                self.notes.add(f"update: {extra} keys beyond the first {MAX_KEYS} ignored")
                break
            if isinstance(key, str) and key in ALL_FIELDS:
                known[key] = value
            else:
                self.notes.add(f"unknown field {snippet(str(key))}")
        return known

    def _decode(self, raw: bytes | bytearray | str) -> object:
        if len(raw) > MAX_UPDATE_BYTES:
            self.notes.add(f"update: {len(raw)} bytes is over the {MAX_UPDATE_BYTES}-byte limit")
            return None
        try:
            return msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
            self.notes.add(f"update: not JSON ({str(exc)[:80]})")
            return None

    def apply(self, base: State, fields: dict[str, object]) -> State:
        values: dict[str, list[str]] = {}
        for name in (*LIST_FIELDS, "history"):
            current: list[str] = getattr(base, name)
            values[name] = self.list_field(name, current, fields[name]) if name in fields \
                else current
        return State(**values, next_focus=self._next_focus(base.next_focus, fields))

    def _next_focus(self, current: str, fields: dict[str, object]) -> str:
        if "next_focus" not in fields:
            return current
        value = fields["next_focus"]
        if value is None:
            return ""
        if not isinstance(value, str):
            self.notes.add(f"next_focus: expected a string, got {type(value).__name__}")
            return current
        return self._clean("next_focus", value) or ""

    def list_field(self, name: str, current: list[str], value: object) -> list[str]:
        adds, removes = self._split_ops(name, value)
        limit = self.caps.history_max if name == "history" else self.caps.list_max_items
        new = self._items(name, adds, limit * 4)
        removing = self._not_also_added(name, self._items(f"{name}.remove", removes, limit * 4),
                                        new)
        kept = self._remove(name, current, removing)
        if name in KEEP_FIRST:
            return self._add_anchored(name, kept, new, limit)
        return self._add_refreshing(name, kept, new, limit)

    def _split_ops(self, name: str, value: object) -> tuple[object, object]:
        """(adds, removes) from either a plain value or ``{"add": …, "remove": …}``."""
        if not isinstance(value, dict):
            return value, None
        for key in value:
            if key not in ("add", "remove"):
                self.notes.add(f"{name}: unknown operation {snippet(str(key))} (use add/remove)")
        return value.get("add"), value.get("remove")

    def _items(self, name: str, value: object, limit: int) -> list[str]:
        """Clean items from a string or a list of strings; at most ``limit`` are looked at."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            kind = type(value).__name__
            self.notes.add(f"{name}: expected a string or a list of strings, got {kind}")
            return []
        if len(value) > limit:
            self.notes.add(f"{name}: {len(value) - limit} items beyond the first {limit} ignored")
        cleaned = (self._clean(f"{name}[{i}]", item) for i, item in enumerate(value[:limit]))
        return [line for line in cleaned if line]

    def _clean(self, where: str, item: object) -> str | None:
        if not isinstance(item, str):
            self.notes.add(f"{where}: expected a string, got {type(item).__name__}")
            return None
        line = clean_text(item, self.caps.item_max_chars)
        if not line and where != "next_focus":
            self.notes.add(f"{where}: empty")
        elif len(item) > self.caps.item_max_chars and line.endswith("…"):
            self.notes.add(f"{where}: cut from {len(item)} to {self.caps.item_max_chars} chars")
        return line

    def _not_also_added(self, name: str, removes: list[str], adds: list[str]) -> list[str]:
        """An item both removed and added by one update stays: the add wins.

        Otherwise applying the same update twice would move the item to the end of the list
        (removed, then appended), and a retried step would not be idempotent.
        """
        added = {dedupe_key(item) for item in adds}
        for r in removes:
            if dedupe_key(r) in added:
                self.notes.add(f"{name}: remove {snippet(r)}: also added, kept")
        return [r for r in removes if dedupe_key(r) not in added]

    def _remove(self, name: str, current: list[str], removes: list[str]) -> list[str]:
        if not removes:
            return current
        present = {dedupe_key(item) for item in current}
        for r in removes:
            if dedupe_key(r) not in present:
                self.notes.add(f"{name}: remove {snippet(r)}: not present")
        doomed = {dedupe_key(r) for r in removes}
        return [item for item in current if dedupe_key(item) not in doomed]

    def _add_anchored(self, name: str, current: list[str], new: list[str], limit: int) -> list[str]:
        """Anchor lists keep what they have: new items only fill free room."""
        out = list(current)
        keys = {dedupe_key(item) for item in out}
        for item in new:
            if dedupe_key(item) in keys:
                continue
            if len(out) >= limit:
                self.notes.add(f"{name}: full ({limit}), refused {snippet(item)}")
                continue
            keys.add(dedupe_key(item))
            out.append(item)
        return out

    def _add_refreshing(
        self, name: str, current: list[str], new: list[str], limit: int
    ) -> list[str]:
        """Newest wins: mentioned items move to the end, the oldest fall off the front."""
        latest = _dedupe_keep_last(new)
        if len(latest) > limit:
            self.notes.add(f"{name}: {len(latest) - limit} earlier items of this update superseded")
            latest = latest[-limit:]
        mentioned = {dedupe_key(item) for item in latest}
        out = [item for item in current if dedupe_key(item) not in mentioned] + latest
        overflow = max(0, len(out) - limit)
        if name != "history":  # history rolls by design; its old entries are not news
            self.evicted.extend(f"{name}: {snippet(item)}" for item in out[:overflow])
        return out[overflow:]


def _dedupe_keep_last(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in reversed(items):
        if dedupe_key(item) not in seen:
            seen.add(dedupe_key(item))
            out.append(item)
    out.reverse()
    return out
