"""Workspaces on the host: create, snapshot, read back, hand to the sandbox uid, remove.

The daemon is root and the workspace content is attacker-controlled, so every read is
``lstat``/no-follow and relative to an open directory fd: symlinks, FIFOs and devices are
never opened, a hard-linked file (which could be a host file linked in from outside) is
refused, and counts, bytes and depth are bounded while walking. Files the daemon hands to the
jail are re-owned by the sandbox uid through the open fd (``fchown``), never by path.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from agentd.config import SandboxLimits
from agentd.records import ErrorKind
from agentd.sandbox.paths import ActionRejected, check_relative

MAX_DEPTH = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


class WorkspaceLimitError(ActionRejected):
    """The workspace is over a quota (files, bytes, depth)."""

    def __init__(self, message: str, kind: ErrorKind = "limit") -> None:
        super().__init__(kind, message)


@dataclass(frozen=True)
class Owner:
    """Who the jail runs as; files are handed over to it (None: leave ownership alone)."""

    uid: int | None = None
    gid: int | None = None


@dataclass
class Snapshot:
    """The regular files of a workspace, by display path, plus what the walk counted."""

    files: dict[str, bytes] = field(default_factory=dict)
    entries: int = 0
    total_bytes: int = 0


def safe_name(task_id: str) -> str:
    """``task_id`` made safe for a file name (bounded, no separators or dots at the start)."""
    return _UNSAFE_ID.sub("_", task_id)[:80].lstrip(".") or "task"


def display_name(name: str) -> str:
    """A file name as JSON-safe text: undecodable bytes and control characters escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _hand_over(fd: int, st: os.stat_result, owner: Owner) -> None:
    if owner.uid is not None and owner.gid is not None and (
            st.st_uid != owner.uid or st.st_gid != owner.gid):
        os.fchown(fd, owner.uid, owner.gid)


class _Walker:
    """One bounded, no-follow walk of a workspace."""

    def __init__(self, limits: SandboxLimits, owner: Owner, *, lenient: bool = False,
                 contents: bool = True) -> None:
        self.limits = limits
        self.owner = owner
        self.lenient = lenient
        self.contents = contents
        self.snap = Snapshot()

    def walk(self, root: Path) -> Snapshot:
        try:
            fd = os.open(root, _DIR_FLAGS)
        except OSError as exc:
            raise ActionRejected("invalid_action", f"workspace unusable: {exc.strerror}") from None
        try:
            _hand_over(fd, os.fstat(fd), self.owner)
            self._dir(fd, "", 0)
        finally:
            os.close(fd)
        return self.snap

    def _dir(self, dfd: int, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise WorkspaceLimitError(f"directories nest deeper than {MAX_DEPTH}")
        with os.scandir(dfd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            self._count()
            self._entry(dfd, name, prefix + display_name(name), depth)

    def _count(self) -> None:
        self.snap.entries += 1
        if self.snap.entries > self.limits.workspace_files:
            raise WorkspaceLimitError(f"more than {self.limits.workspace_files} entries")

    def _entry(self, dfd: int, name: str, shown: str, depth: int) -> None:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                _hand_over(sub, os.fstat(sub), self.owner)
                self._dir(sub, shown + "/", depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            self._file(dfd, name, shown, st)

    def _file(self, dfd: int, name: str, shown: str, st: os.stat_result) -> None:
        if st.st_nlink > 1 and self.lenient:
            return
        if st.st_nlink > 1:
            raise ActionRejected("path_escape", f"hard-linked file in the workspace: {shown[:80]}")
        self.snap.total_bytes += st.st_size
        if self.snap.total_bytes > self.limits.workspace_bytes:
            raise WorkspaceLimitError(f"workspace holds more than {self.limits.workspace_bytes} B")
        if not self.contents:
            return
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or fst.st_ino != st.st_ino:
                raise ActionRejected("path_escape", f"file changed while reading: {shown[:80]}")
            _hand_over(fd, fst, self.owner)
            self.snap.files[shown] = _read_all(fd, fst.st_size)
        finally:
            os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def snapshot(root: Path, limits: SandboxLimits, owner: Owner = Owner()) -> Snapshot:
    """Read every regular file (no-follow, bounded) and hand entries to ``owner``."""
    try:
        return _Walker(limits, owner).walk(root)
    except OSError as exc:  # e.g. EACCES on a stray mount point: unusable, not a crash
        raise ActionRejected("invalid_action", f"workspace unreadable: {exc.strerror}") from None


def quota_breach(root: Path, limits: SandboxLimits) -> str | None:
    """Why the workspace is over its quota right now (None: within it). Sizes only, no
    contents: cheap enough to poll while a test command runs."""
    try:
        _Walker(limits, Owner(), lenient=True, contents=False).walk(root)
    except WorkspaceLimitError as exc:
        return str(exc)
    except (ActionRejected, OSError):
        return None  # a file vanished mid-walk: the check after the run decides
    return None


def readable_files(root: Path, limits: SandboxLimits) -> Snapshot:
    """Like ``snapshot`` but lenient, for reading results back: hard-linked files are skipped
    (their content may be a host file's) and the walk stops quietly at the quotas."""
    walker = _Walker(limits, Owner(), lenient=True)
    try:
        return walker.walk(root)
    except (ActionRejected, OSError):
        return walker.snap


def create_workspace(parent: Path, task_id: str, files: dict[str, str],
                     owner: Owner) -> Path:
    """A fresh directory under ``parent`` holding ``files``, owned by ``owner``."""
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"{safe_name(task_id)}-", dir=parent))
    try:
        for raw, text in sorted(files.items()):
            _write_task_file(root, raw, text)
        # mkdtemp makes 0700; the jail's uid owns it after the hand-over, others may list it.
        os.chmod(root, 0o755)  # noqa: PTH101, S103
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def _write_task_file(root: Path, raw: str, text: str) -> None:
    try:
        rel = check_relative(raw)
    except ActionRejected as exc:
        raise ValueError(f"task file {raw[:80]!r}: {exc}") from None
    if not rel.parts:
        raise ValueError(f"task file {raw[:80]!r} names the workspace itself")
    target = root.joinpath(*rel.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode("utf-8"))


def remove_workspace(root: Path) -> None:
    """Delete ``root`` and everything in it; symlinks are removed, never followed."""
    if root.is_symlink():
        root.unlink()
        return
    shutil.rmtree(root, ignore_errors=True)
