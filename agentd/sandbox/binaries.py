"""The binaries allowlist: names the config and test specs use, mapped to real paths.

A name resolves first in the daemon's own virtualenv (so ``python`` is the interpreter that
has pytest), then on a fixed system PATH — never the caller's ``$PATH``. Each binary also
names the host directories the jail must bind read-only for it to run: a venv interpreter
needs the venv and the base installation it points to.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from agentd.errors import JailUnavailableError

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
_ALIASES = {"python": ("python", "python3"), "ast-grep": ("ast-grep", "sg")}


@dataclass(frozen=True)
class Binary:
    """One allowlisted program: its path (valid in and out of the jail) and its mounts."""

    name: str
    path: Path
    mounts: tuple[Path, ...]


def _venv_bin() -> Path:
    return Path(sys.prefix) / "bin"


def _candidates(name: str) -> list[Path]:
    names = _ALIASES.get(name, (name,))
    dirs = [_venv_bin(), *(Path(d) for d in SYSTEM_PATH)]
    return [d / n for d in dirs for n in names]


def _is_native(path: Path) -> bool:
    """A real ELF executable (not a symlink into an interpreter, not a script)."""
    if path.is_symlink():
        return False
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def _mounts_for(path: Path) -> tuple[Path, ...]:
    """What to bind for ``path``: /usr is always bound; a native binary needs only itself;
    a venv interpreter or script needs the venv and the base install it points to."""
    if path.resolve().is_relative_to("/usr") and not path.is_relative_to(sys.prefix):
        return ()
    if _is_native(path):
        return (path,)
    if path.is_relative_to(sys.prefix):
        roots = {Path(sys.prefix), Path(sys.base_prefix)}
        return tuple(sorted(r for r in roots if not r.is_relative_to("/usr")))
    return (path.resolve(),)


def resolve_binary(name: str) -> Binary:
    """The allowlisted ``name`` as a ``Binary``; ``JailUnavailableError`` when not found."""
    for cand in _candidates(name):
        if cand.is_file() and os.access(cand, os.X_OK):
            return Binary(name=name, path=cand, mounts=_mounts_for(cand))
    raise JailUnavailableError(f"allowlisted binary {name!r} not found")


def resolve_allowlist(names: list[str]) -> dict[str, Binary]:
    """Every name of the allowlist that exists on this host (missing ones are skipped)."""
    out: dict[str, Binary] = {}
    for name in names:
        try:
            out[name] = resolve_binary(name)
        except JailUnavailableError:
            continue
    return out
