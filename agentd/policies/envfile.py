"""API keys: from the environment, else from a git-ignored ``.env.local`` at the project root.

The parser understands the usual dotenv subset — ``KEY=value``, ``export KEY=value``, single
or double quotes, ``#`` comments — and nothing else (no interpolation, no multi-line values).
Keys are returned to the caller and never logged; errors name the variable, not the value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from agentd.fileio import read_regular

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
MAX_ENV_FILE_BYTES = 64 * 1024


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` pairs of a dotenv file; malformed lines are skipped."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            out[match.group(1)] = _unquote(match.group(2).strip())
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].rstrip()  # an unquoted value may carry a trailing comment


def read_env_file(path: Path | None) -> dict[str, str]:
    """The pairs in ``path``; an absent, unreadable or oversized file is empty."""
    if path is None:
        return {}
    try:  # bounded: a FIFO or /dev/zero here must not hang or exhaust the daemon
        return parse_env(read_regular(path, MAX_ENV_FILE_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def lookup_key(
    name: str, *, env: Mapping[str, str] | None = None, file_values: Mapping[str, str] | None = None
) -> str | None:
    """The value of ``name`` from ``env`` (default ``os.environ``), else the env file."""
    environ = os.environ if env is None else env
    value = environ.get(name) or (file_values or {}).get(name)
    return value or None
