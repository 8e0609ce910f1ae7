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
from typing import Literal

from agentd.config import SandboxLimits
from agentd.records import ErrorKind
from agentd.sandbox.paths import ActionRejected, check_relative

MAX_DEPTH = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")
# What a walk does with a hard-linked file: refuse it (snapshots: its content may be a host
# file's), skip it (reading results back) or count its blocks once (the quota watchdog).
Links = Literal["refuse", "skip", "count"]


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

    def __init__(self, limits: SandboxLimits, owner: Owner, *, links: Links = "refuse",
                 contents: bool = True) -> None:
        self.limits = limits
        self.owner = owner
        self.links = links
        self.contents = contents
        self.snap = Snapshot()
        self._seen: set[int] = set()  # inodes already counted (links == "count")
        self._pending: list[tuple[str, ...]] = []  # entries to hand over once all is checked

    def walk(self, root: Path) -> Snapshot:
        try:
            fd = os.open(root, _DIR_FLAGS)
        except OSError as exc:
            raise ActionRejected("invalid_action", f"workspace unusable: {exc.strerror}") from None
        try:
            self._defer((), os.fstat(fd))
            self._dir(fd, "", 0, ())
            # Only a workspace that passed every check changes owner: a refusal (too many
            # entries, a hard link) must not leave half of a foreign tree handed over.
            for parts in self._pending:
                _hand_over_at(fd, parts, self.owner)
        finally:
            os.close(fd)
        return self.snap

    def _defer(self, parts: tuple[str, ...], st: os.stat_result) -> None:
        owner = self.owner
        if owner.uid is not None and (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
            self._pending.append(parts)

    def _dir(self, dfd: int, prefix: str, depth: int, parts: tuple[str, ...]) -> None:
        if depth > MAX_DEPTH:
            raise WorkspaceLimitError(f"directories nest deeper than {MAX_DEPTH}")
        with os.scandir(dfd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            self._count()
            self._entry(dfd, name, prefix + display_name(name), depth, (*parts, name))

    def _count(self) -> None:
        self.snap.entries += 1
        if self.snap.entries > self.limits.workspace_files:
            raise WorkspaceLimitError(f"more than {self.limits.workspace_files} entries")

    def _entry(self, dfd: int, name: str, shown: str, depth: int,
               parts: tuple[str, ...]) -> None:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                self._defer(parts, os.fstat(sub))
                self._dir(sub, shown + "/", depth + 1, parts)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            self._file(dfd, name, shown, st, parts)

    def _file(self, dfd: int, name: str, shown: str, st: os.stat_result,
              parts: tuple[str, ...]) -> None:
        if st.st_nlink > 1 and self.links == "skip":
            return
        if st.st_nlink > 1 and self.links == "refuse":
            raise ActionRejected("path_escape", f"hard-linked file in the workspace: {shown[:80]}")
        if st.st_ino in self._seen:
            return
        self._seen.add(st.st_ino)
        # Blocks as well as size: fallocate(KEEP_SIZE) takes disk beyond the file's size.
        self.snap.total_bytes += max(st.st_size, st.st_blocks * 512)
        if self.snap.total_bytes > self.limits.workspace_bytes:
            raise WorkspaceLimitError(f"workspace holds more than {self.limits.workspace_bytes} B")
        if not self.contents:
            self._defer(parts, st)  # handed over by a no-follow re-open, as below
            return
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or fst.st_ino != st.st_ino:
                raise ActionRejected("path_escape", f"file changed while reading: {shown[:80]}")
            self._defer(parts, fst)
            self.snap.files[shown] = _read_all(fd, fst.st_size)
        finally:
            os.close(fd)


def _hand_over_at(root_fd: int, parts: tuple[str, ...], owner: Owner) -> None:
    """Re-own the entry at ``parts`` under ``root_fd``; every component opened no-follow."""
    fds: list[int] = []
    try:
        dfd = root_fd
        for i, part in enumerate(parts):
            flags = _DIR_FLAGS if i < len(parts) - 1 else _FILE_FLAGS
            dfd = os.open(part, flags, dir_fd=dfd)
            fds.append(dfd)
        st = os.fstat(dfd)
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            _hand_over(dfd, st, owner)
    finally:
        for fd in fds:
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


def admit(root: Path, limits: SandboxLimits, owner: Owner = Owner()) -> Snapshot:
    """``snapshot``'s checks and hand-over without reading a byte: for an action that sees
    the workspace read-only (a search), whose result needs no contents to diff."""
    try:
        return _Walker(limits, owner, contents=False).walk(root)
    except OSError as exc:
        raise ActionRejected("invalid_action", f"workspace unreadable: {exc.strerror}") from None


def usage(root: Path, limits: SandboxLimits) -> Snapshot:
    """Entries and bytes under ``root`` (every hard link's inode counted once), no contents;
    raises ``WorkspaceLimitError`` at a quota and ``OSError`` when the walk fails."""
    return _Walker(limits, Owner(), links="count", contents=False).walk(root)


def readable_files(root: Path, limits: SandboxLimits) -> Snapshot:
    """Like ``snapshot`` but lenient, for reading results back: hard-linked files are skipped
    (their content may be a host file's) and the walk stops quietly at the quotas."""
    walker = _Walker(limits, Owner(), links="skip")
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
