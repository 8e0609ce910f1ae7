"""Matches from ``ast-grep … --json=stream``: one JSON object per line, never text output."""

from __future__ import annotations

import msgspec

from agentd.records import Match

MATCH_TEXT_CHARS = 2000


class _Pos(msgspec.Struct):
    line: int


class _Range(msgspec.Struct):
    start: _Pos
    end: _Pos


class _Raw(msgspec.Struct):
    text: str
    file: str
    range: _Range
    replacement: str | None = None


_decoder = msgspec.json.Decoder(_Raw)


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MATCH_TEXT_CHARS:
        return text
    return text[:MATCH_TEXT_CHARS] + "…"


def _to_match(raw: _Raw) -> Match:
    # ast-grep lines are 0-based; ours are 1-based like an editor's.
    return Match(
        file=raw.file.removeprefix("./"), start_line=raw.range.start.line + 1,
        end_line=raw.range.end.line + 1, text=_clip(raw.text) or "",
        replacement=_clip(raw.replacement),
    )


def parse_matches(stdout: bytes, limit: int) -> tuple[list[Match], bool]:
    """Sorted matches (at most ``limit``) and whether any were dropped or unparsable."""
    found: list[Match] = []
    dropped = False
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            found.append(_to_match(_decoder.decode(line)))
        except (msgspec.DecodeError, msgspec.ValidationError):
            dropped = True  # a line cut by the output cap, or not ast-grep's
    found.sort(key=lambda m: (m.file, m.start_line, m.end_line, m.text))
    return found[:limit], dropped or len(found) > limit
