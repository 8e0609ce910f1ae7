"""Unified diffs of a workspace's before/after snapshots, computed in Python.

Deterministic by construction: files in sorted order, fixed headers (``a/PATH``, ``b/PATH``,
``/dev/null`` for created or deleted files), no timestamps, and a cap that cuts at a line
boundary and says so.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

NO_NEWLINE = "\\ No newline at end of file\n"
# difflib is quadratic in the worst case: a file the jail blew up gets a summary line instead.
MAX_FILE_DIFF_BYTES = 512 * 1024


def changed_files(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Paths created, deleted or modified, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n" + NO_NEWLINE
    return lines


def _file_diff(path: str, old: bytes | None, new: bytes | None) -> Iterator[str]:
    src = "/dev/null" if old is None else f"a/{path}"
    dst = "/dev/null" if new is None else f"b/{path}"
    sizes = (len(old or b""), len(new or b""))
    if max(sizes) > MAX_FILE_DIFF_BYTES:
        yield f"Large files {src} and {dst} differ ({sizes[0]} -> {sizes[1]} bytes)\n"
        return
    try:
        a, b = _lines(old or b""), _lines(new or b"")
    except UnicodeDecodeError:
        yield f"Binary files {src} and {dst} differ\n"
        return
    yield from difflib.unified_diff(a, b, fromfile=src, tofile=dst, n=3)


def unified_diff(before: dict[str, bytes], after: dict[str, bytes], cap: int) -> str:
    """The diff of every changed file, at most ``cap`` bytes of UTF-8."""
    out: list[str] = []
    used = 0
    for path in changed_files(before, after):
        for line in _file_diff(path, before.get(path), after.get(path)):
            size = len(line.encode("utf-8"))
            if used + size > cap:
                out.append(f"... diff truncated at {cap} bytes\n")
                return "".join(out)
            out.append(line)
            used += size
    return "".join(out)
