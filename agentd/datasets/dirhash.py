"""Deterministic directory hashes and the ``metadata.json`` written next to raw data.

The hash covers sorted relative paths, file modes and contents, so two fetches of the same
source on different hosts or days agree, and any edit to ``data/raw`` is detected by
``agentd data verify``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import msgspec

from agentd.fileio import atomic_output

METADATA_FILE = "metadata.json"
TREE_DIR = "tree"
_CHUNK = 1 << 16


class RawMetadata(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``data/raw/<name>/metadata.json`` records about one fetched source."""

    name: str
    kind: str
    source: str
    version: str
    license: str
    sha256: str | None
    dir_hash: str
    files: int
    total_bytes: int
    archive_bytes: int | None
    fetched_at: str
    schema_version: int = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entries(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def dir_hash(root: Path) -> tuple[str, int, int]:
    """``(hex digest, file count, total bytes)`` of everything under ``root``.

    Each entry contributes its relative path, its permission bits and the sha256 of its
    contents (a symlink contributes its target instead), NUL-separated so that no
    concatenation of two entries can collide with another.
    """
    digest = hashlib.sha256()
    files = total = 0
    for rel, path in _entries(root):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            body = "link:" + str(path.readlink())
        else:
            body = file_sha256(path)
            files += 1
            total += st.st_size
        digest.update(f"{rel}\0{stat.S_IMODE(st.st_mode):o}\0{body}\0".encode())
    return digest.hexdigest(), files, total


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a sibling temp file, fsync, then rename over ``path``."""
    data = msgspec.json.format(msgspec.json.encode(obj), indent=2) + b"\n"
    with atomic_output(path) as fh:
        fh.write(data)


def read_metadata(dataset_dir: Path) -> RawMetadata:
    return msgspec.json.decode((dataset_dir / METADATA_FILE).read_bytes(), type=RawMetadata)
