"""The ``State`` record: what the agent carries between steps instead of a chat history.

A ``State`` is small, structured and always within its caps (``StateConfig``): every item is
one line of at most ``item_max_chars`` characters, every list holds at most
``list_max_items`` items, ``history`` at most ``history_max``. ``merge`` is the only way a
model's update reaches it; ``clean_text`` is the one normaliser every item goes through, so
the rendered block and the stored JSON agree.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import msgspec

from agentd.config import StateConfig

LIST_FIELDS: Final = ("goals", "constraints", "decisions", "hypotheses", "open_issues")
"""List fields with append + dedupe semantics (``history`` has its own)."""

KEEP_FIRST: Final = frozenset({"goals", "constraints"})
"""Anchor lists: when full, new items are refused instead of evicting old ones."""

ALL_FIELDS: Final = (*LIST_FIELDS[:4], "history", "open_issues", "next_focus")
"""Every field, in render order."""

ELLIPSIS: Final = "…"

# The protocol's own tags: an item that contains one could end the <state> block early or
# look like an instruction, so the "<" is swapped for a look-alike that no parser matches.
_PROTOCOL_TAG = re.compile(r"<(/?\s*(?:state_update|state|think|action)\b)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# Characters a model could use to hide text or reorder it on screen (control, format,
# surrogate, private use, unassigned).
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


class State(msgspec.Struct, frozen=True, kw_only=True):
    """The agent's structured working memory for one (run, task, episode)."""

    goals: list[str] = msgspec.field(default_factory=list)
    constraints: list[str] = msgspec.field(default_factory=list)
    decisions: list[str] = msgspec.field(default_factory=list)
    hypotheses: list[str] = msgspec.field(default_factory=list)
    history: list[str] = msgspec.field(default_factory=list)
    open_issues: list[str] = msgspec.field(default_factory=list)
    next_focus: str = ""

    def to_dict(self) -> dict[str, list[str] | str]:
        """The state as plain JSON-ready builtins (every field, fixed order)."""
        return {name: _copy(getattr(self, name)) for name in ALL_FIELDS}

    def is_empty(self) -> bool:
        """True when no field holds anything."""
        return not any(getattr(self, name) for name in ALL_FIELDS)


def _copy(value: list[str] | str) -> list[str] | str:
    return list(value) if isinstance(value, list) else value


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(State)


def encode_state(state: State) -> bytes:
    """Deterministic JSON of a state (the store's column format)."""
    return _encoder.encode(state)


def decode_state(data: bytes | str) -> State:
    """Decode stored JSON; raises ``msgspec.DecodeError`` / ``ValidationError`` if corrupt."""
    return _decoder.decode(data)


def clean_text(text: str, max_chars: int) -> str:
    """One line, no hidden characters, protocol tags defused, at most ``max_chars`` characters.

    The input is cut before any other work so a multi-megabyte string costs no more than a
    short one; whitespace can only shrink it, so four times the cap is enough to fill it.
    """
    head = text[: max_chars * 4 + 1]
    if head.isascii() and head.isprintable():
        visible = head  # the common case: no control or invisible character can be present
    else:
        visible = "".join(" " if ch.isspace() else ch for ch in head if _visible(ch))
    line = _PROTOCOL_TAG.sub(r"‹\1", _SPACES.sub(" ", visible)).strip()
    if len(line) > max_chars or len(text) > len(head):
        line = line[: max_chars - 1].rstrip() + ELLIPSIS
    return line


def _visible(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) not in _HIDDEN_CATEGORIES


def dedupe_key(text: str) -> str:
    """Two items are the same item when they differ only in case and spacing."""
    return text.casefold()


def cap_state(state: State, caps: StateConfig) -> State:
    """Enforce the caps on a state from any source (an old row, a hand-built state)."""
    lists = {name: _cap_list(name, getattr(state, name), caps) for name in LIST_FIELDS}
    history = _cap_list("history", state.history, caps)
    return State(
        **lists,
        history=history[max(0, len(history) - caps.history_max) :],
        next_focus=clean_text(state.next_focus, caps.item_max_chars),
    )


def _cap_list(name: str, items: list[str], caps: StateConfig) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        line = clean_text(item, caps.item_max_chars)
        if line and dedupe_key(line) not in seen:
            seen.add(dedupe_key(line))
            out.append(line)
    if name == "history" or len(out) <= caps.list_max_items:
        return out
    return out[: caps.list_max_items] if name in KEEP_FIRST else out[-caps.list_max_items :]
