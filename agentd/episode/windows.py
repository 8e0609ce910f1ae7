"""The workspace files as the prompt shows them: whole when they fit, else windowed.

A file that fits the remaining character budget is shown whole. A larger one is shown as an
*outline* (its ``def``/``class`` lines with their numbers) plus *regions*: numbered lines
around its focus points, nearest first, until the budget is spent. Focus points are, in order:

1. what the model looked at in earlier steps of the episode (ast-grep matches, ``read_file``
   ranges: ``Focus``) — so a window grows where the model reads;
2. lines holding a code fragment the instruction quotes in backticks (the likely matches);
3. the top of the file.

Everything not shown is announced with its line numbers, so the model knows to ``read_file``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agentd.records import Match, ReadFile

MAX_LISTED_FILES = 30
REGION_CONTEXT = 6  # lines shown above and below a focus point
OUTLINE_MAX_LINES = 40
_OUTLINE = re.compile(r"^\s*(async\s+def|def|class)\s+\w")
_QUOTED = re.compile(r"`([^`\n]{2,80})`")
MIN_WINDOW_CHARS = 200  # below this a file is listed, not shown

Focus = dict[str, list[tuple[int, int]]]  # path -> 1-based inclusive line ranges


def add_focus(focus: Focus, matches: list[Match], read: ReadFile | None) -> Focus:
    """``focus`` plus the matches and read range of one step (newest first, bounded)."""
    out = {path: list(ranges) for path, ranges in focus.items()}
    found = [(m.file, m.start_line, m.end_line) for m in matches[:20]]
    if read is not None:
        end = read.end_line or read.start_line or 10**6
        found.insert(0, (read.path, read.start_line or 1, end))
    for path, start, end in found:
        ranges = out.setdefault(path.removeprefix("./"), [])
        if (start, end) not in ranges:
            ranges.insert(0, (start, end))
        del ranges[16:]
    return out


def files_block(
    files: Mapping[str, str], budget: int, *, focus: Focus | None = None, instruction: str = ""
) -> str:
    """A listing of the workspace (path, lines) and, within ``budget`` characters, contents."""
    paths = sorted(files)
    listing = [f"- {p} ({len(files[p].splitlines())} lines)" for p in paths[:MAX_LISTED_FILES]]
    if len(paths) > MAX_LISTED_FILES:
        listing.append(f"- … and {len(paths) - MAX_LISTED_FILES} more files")
    quoted = _QUOTED.findall(instruction)
    blocks: list[str] = []
    for path in paths:
        if budget < MIN_WINDOW_CHARS:
            break
        block = _show(path, files[path], budget, (focus or {}).get(path, []), quoted)
        budget -= len(block)
        blocks.append(block)
    return "\n".join(listing) + ("\n\n" + "\n\n".join(blocks) if blocks else "")


def _show(path: str, text: str, budget: int, ranges: list[tuple[int, int]],
          quoted: list[str]) -> str:
    head = f"=== {path} ==="
    if len(head) + 1 + len(text) <= budget:
        return f"{head}\n{text.rstrip(chr(10))}"
    lines = text.splitlines()
    head = f"=== {path} (windowed: {len(lines)} lines; read_file shows the rest) ==="
    outline = _outline(lines)
    room = budget - len(head) - len(outline) - 2
    if room < MIN_WINDOW_CHARS // 2:
        outline, room = "", budget - len(head) - 1
    regions = _regions(lines, _points(lines, ranges, quoted), room)
    return "\n".join(part for part in (head, outline, regions) if part)


def _outline(lines: list[str]) -> str:
    marks = [f"{i:>5}| {line.rstrip()}" for i, line in enumerate(lines, 1) if _OUTLINE.match(line)]
    if not marks:
        return ""
    shown = marks[:OUTLINE_MAX_LINES]
    more = f"\n  … {len(marks) - len(shown)} more definitions" if len(marks) > len(shown) else ""
    return "outline:\n" + "\n".join(shown) + more


def _points(lines: list[str], ranges: list[tuple[int, int]], quoted: list[str]) -> list[int]:
    """Focus lines (1-based) in priority order: earlier steps, quoted fragments, the top."""
    points = [start for start, _ in ranges]
    for start, end in ranges:  # a read range asks for its whole span
        points.extend(range(start + REGION_CONTEXT * 2, min(end, len(lines)) + 1,
                            REGION_CONTEXT * 2 + 1))
    points += [i for i, line in enumerate(lines, 1) if any(q in line for q in quoted)][:50]
    points.append(1)
    return [p for p in dict.fromkeys(points) if 1 <= p <= len(lines)]


def _regions(lines: list[str], points: list[int], room: int) -> str:
    chosen: set[int] = set()
    used = 0
    for point in points:
        span = range(max(1, point - REGION_CONTEXT), min(len(lines), point + REGION_CONTEXT) + 1)
        new = [n for n in span if n not in chosen]
        cost = sum(len(lines[n - 1]) + 8 for n in new)
        if used + cost > room:
            break
        chosen.update(new)
        used += cost
    return _render(lines, sorted(chosen))


def _render(lines: list[str], numbers: list[int]) -> str:
    out: list[str] = []
    previous = 0
    for n in numbers:
        if n != previous + 1:
            out.append(f"  … lines {previous + 1}-{n - 1} not shown")
        out.append(f"{n:>5}| {lines[n - 1].rstrip()}")
        previous = n
    if numbers and previous < len(lines):
        out.append(f"  … lines {previous + 1}-{len(lines)} not shown")
    return "\n".join(out)
