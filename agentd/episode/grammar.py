"""The output protocol as a regular expression for constrained decoding.

``structured_output_regex()`` is sent as vLLM's ``structured_outputs: {"regex": ...}``. It is
generated from the ``Action`` union itself (one alternative per tool, its fields in declaration
order — the order ``protocol.render`` writes them, optional fields optional), so a new tool or
field shows up here without an edit. It uses only the regex subset that vLLM's backends
(xgrammar, outlines) translate: character classes, ``(…)`` groups, ``|``, ``?``, ``*`` and
``{m,n}`` — no lookarounds, no backreferences, no non-capturing groups.

The shape it forces:
* ``<think>`` free text. ``<`` is allowed (a model must be able to reason about ``a < b``)
  except before ``/``, ``<`` or a letter, so the block can neither be closed early nor hold
  another tag. Its length is not bounded in the grammar: vLLM's grammar backend expands a
  bounded repetition ``{1,n}`` into ``n`` states, and with ``n = 192`` a CPU vLLM decoded
  SmolLM2 15× slower (33.5 s against 2.2 s for 64 tokens; unbounded: 2.2 s, the same as no
  grammar at all; ``benchmarks/grammar_cost.py``).
  ``think_max_chars`` still bounds it where the caller asks; the engine does not, and a model
  that thinks until ``max_tokens`` gets the parse error ``truncated`` for that step;
* no ``<think>`` at all when the endpoint's reasoning parser takes the reasoning out of the
  answer (vLLM ``--reasoning-parser``): structured outputs then constrain only the answer;
* ``<action>`` one of the tool JSON objects, string fields as JSON strings (escapes allowed,
  raw control characters not), ``paths`` as a bounded list, line numbers as positive integers;
* ``<state_update>`` a JSON object of the state's fields (``agentd.state``) whose values are a
  string, a list of strings, an ``{"add": [...], "remove": [...]}`` edit or ``null``.

Everything the regex accepts is accepted by ``protocol.parse`` (tested); the converse does not
hold — the parser also takes other key orders and whitespace.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import msgspec

from agentd.records import Action
from agentd.state.model import ALL_FIELDS

THINK_MAX_CHARS = 2000
THINK_MIN_CHARS = 16
PATHS_MAX = 16
STATE_FIELDS: tuple[str, ...] = ALL_FIELDS

JSON_STRING = r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
JSON_INT = r"[1-9][0-9]{0,8}"
_SEP = "[ ]?"  # one optional space after ':' and ',' — the compact and the spaced style


def think_budget(max_tokens: int | None) -> int:
    """Characters of thinking that leave the action room within ``max_tokens`` (a character
    is at most about one token): for callers that bound ``<think>`` and accept the cost."""
    if max_tokens is None:
        return THINK_MAX_CHARS
    return max(THINK_MIN_CHARS, min(THINK_MAX_CHARS, max_tokens // 2))


def structured_output_regex(
    *, think_max_chars: int | None = None, state_fields: Sequence[str] = STATE_FIELDS,
    think: bool = True,
) -> str:
    """The regex of one well-formed completion (see the module docstring); ``<think>`` is
    unbounded unless ``think_max_chars`` is given."""
    action = f"<action>{action_regex()}</action>"
    state = f"<state_update>{state_update_regex(state_fields)}</state_update>"
    if not think:
        return rf"{action}\n{state}"
    unit = "([^<]|<{1,2}[^/<a-zA-Z])"
    repeat = "+" if think_max_chars is None else f"{{1,{think_max_chars}}}"
    return rf"<think>{unit}{repeat}</think>\n{action}\n{state}"


def structured_outputs(**kwargs: typing.Any) -> dict[str, str]:
    """The ``structured_outputs`` request field: ``{"regex": structured_output_regex()}``."""
    return {"regex": structured_output_regex(**kwargs)}


def action_regex() -> str:
    """One alternative per tool of the ``Action`` union."""
    return "(" + "|".join(_tool_regex(cls) for cls in typing.get_args(Action)) + ")"


def state_update_regex(state_fields: Sequence[str] = STATE_FIELDS) -> str:
    """An object of state fields, possibly empty, in the shapes ``state.merge`` takes.

    A value is ``"text"``, ``["text", …]``, ``{"add": [...], "remove": [...]}`` (either key
    optional) or ``null`` (clears ``next_focus``).
    """
    key = '"(' + "|".join(state_fields) + ')"'
    items = _list(JSON_STRING, None)
    edit = f'"(add|remove)":{_SEP}{items}'
    value = rf"(null|{JSON_STRING}|{items}|\{{({edit}(,{_SEP}{edit})?)?\}})"
    member = f"{key}:{_SEP}{value}"
    return rf"\{{({member}(,{_SEP}{member})*)?\}}"


def _tool_regex(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    parts = [f'"tool":{_SEP}"{tag}"']
    for field in msgspec.structs.fields(cls):
        member = f'"{field.encode_name}":{_SEP}{_value_regex(field.type)}'
        parts.append(f",{_SEP}{member}" if field.required else f"(,{_SEP}{member})?")
    return r"\{" + "".join(parts) + r"\}"


def _value_regex(annotation: object) -> str:
    """Regex of a field's JSON value; ``X | None`` fields are simply omitted when absent."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if args else annotation
    if base is str:
        return JSON_STRING
    if base is int:
        return JSON_INT
    if typing.get_origin(base) is list and typing.get_args(base) == (str,):
        return _list(JSON_STRING, PATHS_MAX)
    raise TypeError(f"no regex for field type {annotation!r}")


def _list(item: str, max_items: int | None) -> str:
    more = "*" if max_items is None else f"{{0,{max_items - 1}}}"
    return rf"\[({item}(,{_SEP}{item}){more})?\]"
