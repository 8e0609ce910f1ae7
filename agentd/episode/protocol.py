"""The tagged output protocol: parse a model's completion, render the canonical form.

A model answers every step with exactly three blocks, in this order::

    <think>free text</think>
    <action>{"tool": "...", ...}</action>
    <state_update>{"field": ...}</state_update>

Rules, strict on structure and tolerant of whitespace:

* Whitespace (spaces, tabs, newlines) is allowed before ``<think>``, between the blocks, inside
  the blocks around the content and after ``</state_update>``. Qwen3 often starts a completion
  with a newline; that is whitespace and is fine. Any other text outside the blocks — chatter
  before ``<think>``, markdown fences, a second action — is rejected: it is where a model hides
  mistakes, and a trajectory that trains on it teaches the mistake.
* The think text may contain anything but the six protocol tags. The JSON blocks are scanned as
  JSON, so a tag that appears inside a JSON string (``"rewrite": "</action>"``) is content, not
  structure. ``render`` still escapes such tags (``\\u003c``) so that naive tools that split on
  tags never see one inside a value.
* The action must decode into the tagged ``Action`` union of ``agentd.records`` (unknown tools
  and unknown fields are errors). ``state_update`` must be a JSON object; its fields are
  validated by the state package, not here.
* Hostile sizes are refused before any decoding: completions over ``MAX_RAW_BYTES`` and JSON
  nested deeper than ``MAX_JSON_DEPTH``.

When the endpoint reasons natively (its reasoning arrived apart from the answer, see
``policies.reasoning``), ``parse(raw, think_optional=True)`` also takes an answer that starts
at ``<action>``: the model's reasoning is its think. An answer cut off by the token limit
(``finish_reason=length``) that does not parse is ``truncated``, not a format mistake.

``parse`` never raises on model output: every failure is a ``ParseError(kind, reason)`` whose
reason is written to the model as feedback (it becomes the next observation).

``structured_output_regex()`` is the same shape as a regular expression for vLLM's
``structured_outputs: {"regex": ...}``: bounded think text (``<`` allowed, but not ``</`` nor
``<`` before a letter), one of the tool JSON
shapes (fields in the order ``render`` writes them) and a flat state object whose values are
strings or lists of strings.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from agentd.episode.grammar import structured_output_regex, structured_outputs
from agentd.errors import RefusedInputError
from agentd.records import Action, ModelOutput, convert_action

__all__ = [
    "MAX_JSON_DEPTH", "MAX_RAW_BYTES", "ParseError", "ParseErrorKind", "ParsedOutput",
    "action_json", "encode_json", "model_output", "parse", "parse_completion", "render",
    "render_parsed",
    "structured_output_regex", "structured_outputs",
]

MAX_RAW_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32

TAGS = ("think", "action", "state_update")
_OPENERS = tuple(f"<{t}>" for t in TAGS)
_ALL_TAGS = _OPENERS + tuple(f"</{t}>" for t in TAGS)
_WS = " \t\r\n"

ParseErrorKind = Literal[
    "empty",  # nothing but whitespace
    "too_large",  # over MAX_RAW_BYTES
    "too_deep",  # JSON nested deeper than MAX_JSON_DEPTH
    "missing_tag",  # a block or its closing tag is absent
    "duplicate_tag",  # a block appears more than once
    "tag_order",  # blocks out of order or nested in each other
    "stray_text",  # non-whitespace text outside the blocks
    "action_json",  # <action> does not hold one well-formed JSON object
    "action_schema",  # valid JSON, but not a valid action
    "state_json",  # <state_update> does not hold one well-formed JSON object
    "truncated",  # cut off at max_tokens (finish_reason=length) before it was complete
]

_FORMAT_HINT = (
    "Answer with <think>…</think> then <action>{JSON}</action> then "
    "<state_update>{JSON}</state_update>, nothing else."
)


class ParsedOutput(msgspec.Struct, frozen=True):
    """A well-formed completion: the think text (stripped), the action and the state update."""

    think: str
    action: Action
    state_update: dict[str, Any]


class ParseError(msgspec.Struct, frozen=True):
    """Why a completion was rejected; ``reason`` is short feedback addressed to the model."""

    kind: ParseErrorKind
    reason: str

    def feedback(self) -> str:
        """The reason followed by a one-line reminder of the format."""
        return f"{self.reason} {_FORMAT_HINT}"


class _Fail(RefusedInputError):
    """Internal control flow: carries a ParseError out of nested helpers; never escapes."""

    def __init__(self, kind: ParseErrorKind, reason: str) -> None:
        super().__init__(reason)
        self.error = ParseError(kind, reason)


# ---------------------------------------------------------------- parsing


def parse(
    raw: str, *, max_bytes: int = MAX_RAW_BYTES, max_depth: int = MAX_JSON_DEPTH,
    think_optional: bool = False,
) -> ParsedOutput | ParseError:
    """Parse one completion; return the parsed blocks or a ``ParseError`` (never raise)."""
    try:
        _check_size(raw, max_bytes)
        return _parse_blocks(raw.strip(_WS), max_depth, think_optional)
    except _Fail as fail:
        return fail.error


def parse_completion(
    raw: str, finish_reason: str, *, think_optional: bool = False
) -> ParsedOutput | ParseError:
    """``parse``, reporting an unparsable answer that hit the token limit as ``truncated``."""
    parsed = parse(raw, think_optional=think_optional)
    if isinstance(parsed, ParseError) and finish_reason == "length":
        return ParseError("truncated", "Your answer was cut off at the token limit before it "
                                       "was complete; think more briefly.")
    return parsed


def _check_size(raw: str, max_bytes: int) -> None:
    # len(raw) ≤ bytes, so the cheap test first; encode only when it might fit.
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        raise _Fail("too_large", f"Your answer is over {max_bytes // 1024} KiB; keep it short.")
    if not raw.strip(_WS):
        raise _Fail("empty", "Your answer was empty.")


def _parse_blocks(text: str, max_depth: int, think_optional: bool = False) -> ParsedOutput:
    if think_optional and text.startswith("<action>"):
        think, pos = "", 0
    else:
        think, pos = _think_block(text)
    pos = _expect_open(text, pos, "action")
    action_json, pos = _json_block(text, pos, "action", max_depth)
    pos = _expect_open(text, pos, "state_update")
    state_json, pos = _json_block(text, pos, "state_update", max_depth)
    _check_tail(text[pos:])
    return ParsedOutput(think.strip(_WS), _decode_action(action_json), _decode_state(state_json))


def _think_block(text: str) -> tuple[str, int]:
    """The think text and the index after ``</think>``."""
    pos = _expect_open(text, 0, "think")
    end = text.find("</think>", pos)
    if end < 0:
        raise _Fail("missing_tag", "The <think> block is not closed with </think>.")
    think = text[pos:end]
    _check_think(think)
    return think, end + len("</think>")


def _expect_open(text: str, pos: int, tag: str) -> int:
    """Skip whitespace at ``pos``; require ``<tag>`` there; return the index after it."""
    start = _skip_ws(text, pos)
    opener = f"<{tag}>"
    if text.startswith(opener, start):
        return start + len(opener)
    if opener not in text[start:]:
        raise _Fail("missing_tag", f"No <{tag}> block where it was expected.")
    found = _next_tag(text, start)
    if found is not None and found[1] in _OPENERS[: _OPENERS.index(opener)]:
        raise _Fail("duplicate_tag", f"Write exactly one {found[1]} block.")
    if found is not None and found[1] != opener:
        raise _Fail(
            "tag_order",
            f"Found {found[1]} where <{tag}> was expected; the order is "
            "<think>, <action>, <state_update>.",
        )
    raise _Fail("stray_text", f"Unexpected text before <{tag}>: {_snippet(text[start:])!r}.")


def _next_tag(text: str, start: int) -> tuple[int, str] | None:
    hits = [(i, t) for t in _ALL_TAGS if (i := text.find(t, start)) >= 0]
    return min(hits) if hits else None


def _check_think(think: str) -> None:
    if "<think>" in think:
        raise _Fail("duplicate_tag", "Write exactly one <think> block.")
    for tag in _ALL_TAGS:
        if tag in think:
            raise _Fail("tag_order", f"{tag} appears inside <think>; close </think> first.")


def _json_block(text: str, pos: int, tag: str, max_depth: int) -> tuple[str, int]:
    """Read one JSON object after ``<tag>`` and its ``</tag>``; return (json, index after)."""
    kind: ParseErrorKind = "action_json" if tag == "action" else "state_json"
    closer = f"</{tag}>"
    start = _skip_ws(text, pos)
    if closer not in text[start:]:
        raise _Fail("missing_tag", f"The <{tag}> block is not closed with {closer}.")
    if text.startswith("```", start):
        raise _Fail(kind, f"Write the JSON object directly inside <{tag}>, without ``` fences.")
    if not text.startswith("{", start):
        raise _Fail(kind, f"<{tag}> must hold one JSON object starting with '{{'.")
    end = _json_extent(text, start, tag, max_depth)
    after = _skip_ws(text, end)
    if not text.startswith(closer, after):
        raise _Fail(
            "stray_text", f"Unexpected text after the JSON object in <{tag}>; write one object."
        )
    return text[start:end], after + len(closer)


# A JSON string token (unrolled loop: no catastrophic backtracking) or a bracket.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]', re.DOTALL)


def _json_extent(text: str, start: int, tag: str, max_depth: int) -> int:
    """End index of the JSON value opening at ``start``; bounds depth before any decoding."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text, start):
        lexeme = match.group()
        if lexeme in "{[":
            depth += 1
            if depth > max_depth:
                raise _Fail("too_deep", f"The JSON in <{tag}> is nested too deeply.")
        elif lexeme in "}]":
            depth -= 1
            if depth == 0:
                return match.end()
    kind: ParseErrorKind = "action_json" if tag == "action" else "state_json"
    raise _Fail(kind, f"The JSON object in <{tag}> is not closed.")


def _check_tail(tail: str) -> None:
    if not tail:
        return
    if any(tag in tail for tag in _ALL_TAGS):
        raise _Fail(
            "duplicate_tag", "Write exactly one <think>, one <action> and one <state_update> block."
        )
    raise _Fail("stray_text", f"Nothing may follow </state_update>; found {_snippet(tail)!r}.")


def _decode_action(blob: str) -> Action:
    try:
        obj = msgspec.json.decode(blob)
    except msgspec.DecodeError as exc:
        raise _Fail("action_json", f"The action is not valid JSON: {_short(exc)}.") from None
    if not isinstance(obj, dict):
        raise _Fail("action_json", "The action must be a JSON object.")
    if "tool" not in obj:
        raise _Fail("action_schema", 'The action needs a "tool" field.')
    try:
        return convert_action(obj)
    except msgspec.ValidationError as exc:
        raise _Fail("action_schema", f"Invalid action: {_short(exc)}.") from None


def _decode_state(blob: str) -> dict[str, Any]:
    try:
        obj = msgspec.json.decode(blob)
    except msgspec.DecodeError as exc:
        raise _Fail("state_json", f"The state update is not valid JSON: {_short(exc)}.") from None
    if not isinstance(obj, dict):
        raise _Fail("state_json", "The state update must be a JSON object.")
    return obj


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def _snippet(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(exc: Exception, limit: int = 120) -> str:
    msg = str(exc).rstrip(".")
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


# ---------------------------------------------------------------- rendering


def render(think: str, action: Action, state_update: dict[str, Any]) -> str:
    """The canonical text of one step; ``parse(render(t, a, s))`` gives back ``(t, a, s)``.

    ``think`` is stripped and must not contain protocol tags (``ValueError``: this is our own
    text, so a tag in it is a bug, not model output).
    """
    think = think.strip(_WS)
    if any(tag in think for tag in _ALL_TAGS):
        raise ValueError("think text must not contain protocol tags")
    return (
        f"<think>\n{think}\n</think>\n"
        f"<action>{encode_json(action)}</action>\n"
        f"<state_update>{encode_json(state_update)}</state_update>"
    )


def render_parsed(parsed: ParsedOutput) -> str:
    """``render`` of an already parsed output."""
    return render(parsed.think, parsed.action, parsed.state_update)


def encode_json(value: Action | dict[str, Any]) -> str:
    """Compact JSON (action fields in declaration order) with protocol tags escaped."""
    text = msgspec.json.encode(value).decode()
    for tag in _ALL_TAGS:
        # '<' only occurs inside JSON strings, where \u003c is an equivalent escape.
        text = text.replace(tag, "\\u003c" + tag[1:])
    return text


def model_output(
    raw: str, parsed: ParsedOutput | ParseError, *, reasoning: str = ""
) -> ModelOutput:
    """The trajectory record's ``model_output`` for a completion and its parse result."""
    if isinstance(parsed, ParseError):
        return ModelOutput(raw=raw, reasoning=reasoning)
    return ModelOutput(
        raw=raw, think=parsed.think, action=parsed.action, state_update=parsed.state_update,
        reasoning=reasoning,
    )


def action_json(action: Action) -> str:
    """The action as the model writes it (for prompts and few-shot examples)."""
    return encode_json(action)
