"""Render a ``State`` as the ``<state>`` block of a prompt.

The text is a pure function of the state — fixed field order, fixed layout, no timestamps —
so the same state always renders to the same bytes (prompt caches and trajectory diffs rely
on it). Empty fields are left out: the block only grows with content, which keeps the prompt
short and makes "drop one more item" always shrink it (``fit_budget`` relies on that). Items
are passed through ``clean_text`` again, so a state built by hand cannot break out of the
block either.
"""

from __future__ import annotations

from typing import Final

from agentd.state.model import ALL_FIELDS, State, clean_text

OPEN: Final = "<state>"
CLOSE: Final = "</state>"
# Render never truncates harder than storage did; this only guards hand-built states.
_RENDER_MAX_CHARS: Final = 4096


def render(state: State) -> str:
    """The ``<state>…</state>`` block for ``state``; deterministic."""
    lines = [OPEN]
    for name in ALL_FIELDS:
        lines.extend(_field_lines(name, getattr(state, name)))
    lines.append(CLOSE)
    return "\n".join(lines)


def _field_lines(name: str, value: list[str] | str) -> list[str]:
    if isinstance(value, str):
        line = _line(value)
        return [f"{name}: {line}"] if line else []
    items = [line for line in map(_line, value) if line]
    return [f"{name}:", *(f"- {item}" for item in items)] if items else []


def _line(text: str) -> str:
    return clean_text(text, _RENDER_MAX_CHARS)
