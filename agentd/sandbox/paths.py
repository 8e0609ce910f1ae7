"""Path rules for anything a model names: relative, inside the workspace, never a symlink.

ast-grep follows an explicit symlink path and ``-U`` writes through it, a path beginning with
``-`` is parsed as a flag, and a newline in a name breaks line-oriented output — so each path
argument is checked lexically and then walked component by component with ``lstat``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from agentd.errors import RefusedInputError
from agentd.records import ErrorKind

MAX_PATH_CHARS = 1024
MAX_PATHS = 64


class ActionRejected(RefusedInputError):
    """An action refused before any process started; ``kind`` is its ``error_kind``."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


def check_relative(raw: str) -> PurePosixPath:
    """The normalised relative path, or ``ActionRejected``."""
    if not raw or len(raw) > MAX_PATH_CHARS:
        raise ActionRejected("invalid_action", "path is empty or too long")
    if any(c in raw for c in "\x00\n\r"):
        raise ActionRejected("invalid_action", "path contains NUL or a line break")
    if raw.startswith("/"):
        raise ActionRejected("path_escape", f"absolute path: {raw[:80]!r}")
    path = PurePosixPath(raw)
    if ".." in path.parts:
        raise ActionRejected("path_escape", f"path leaves the workspace: {raw[:80]!r}")
    if path.parts and path.parts[0].startswith("-"):
        raise ActionRejected("invalid_action", f"path starts with '-': {raw[:80]!r}")
    return path


def resolve_inside(workspace: Path, rel: PurePosixPath) -> Path:
    """``workspace/rel`` after checking that no component is a symlink and that it exists."""
    current = workspace
    for part in rel.parts:
        current = current / part
        mode = _lstat_mode(current, rel)
        if stat.S_ISLNK(mode):
            raise ActionRejected("path_escape", f"path goes through a symlink: {str(rel)[:80]!r}")
    return current


def _lstat_mode(path: Path, rel: PurePosixPath) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        raise ActionRejected("invalid_action", f"no such path: {str(rel)[:80]!r}") from None
    except OSError as exc:
        raise ActionRejected("invalid_action", f"cannot stat {str(rel)[:80]!r}: "
                             f"{exc.strerror}") from None


def check_paths(workspace: Path, raw_paths: list[str] | None) -> list[str]:
    """Validated, normalised path arguments (``["."]`` when none were given)."""
    if not raw_paths:
        return ["."]
    if len(raw_paths) > MAX_PATHS:
        raise ActionRejected("invalid_action", f"more than {MAX_PATHS} paths")
    out: list[str] = []
    for raw in raw_paths:
        rel = check_relative(raw)
        mode = os.lstat(resolve_inside(workspace, rel)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # A FIFO named explicitly would block the tool until the wall clock runs out.
            raise ActionRejected("invalid_action", f"not a file or directory: {raw[:80]!r}")
        out.append(str(rel))
    return sorted(set(out))
