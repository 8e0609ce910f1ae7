"""Durable file writes (a file appears whole at its path, or not at all) and bounded reads
(a file named by configuration is read only if it is a regular file under a size cap)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from agentd.errors import UsageError


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a new file, a rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(out: Path, *, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``out`` only if the block finishes without error.

    Written to a sibling temp file, fsynced, renamed over ``out``, then the directory fsynced;
    on any error the temp file is removed and ``out`` is untouched.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp's 0600 would hide the file from its readers
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(out)
        fsync_dir(out.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileRefused(UsageError, OSError):
    """A file that must not be read: not a regular file, or over its size cap."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; never blocks
    on a FIFO and never reads a device (``/dev/zero``) or an unbounded file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{path}: not a regular file")
        data = b""
        while len(data) <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise FileRefused(f"{path}: larger than {max_bytes} bytes")
    return data
