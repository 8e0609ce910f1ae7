"""The disk watchdog of one running action: is it over its quota right now?

Polled while a test command runs (the check after the run alone would let a fast writer fill
the host disk first). It counts what a walk of the workspace cannot see:

* hard-linked files, each inode once (skipping them let a linker hide data);
* files the action's processes hold open, or mapped, after unlinking them (through
  ``/proc/PID/fd`` and ``/proc/PID/map_files`` of every process in the action's cgroup);
* the jail's private ``/tmp`` by inodes (``statvfs`` through ``/proc/PID/root``); its bytes
  are capped by the tmpfs size and, with its inodes' kernel memory, by the memory cgroup.

A walk that keeps failing (a process renaming files to blind it) is a breach, not a pass.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from agentd.config import SandboxLimits
from agentd.sandbox.paths import ActionRejected
from agentd.sandbox.workspace import WorkspaceLimitError, usage

WALK_TRIES = 3
_PROC = Path("/proc")


def quota_breach(root: Path, limits: SandboxLimits, pids: Sequence[int] = ()) -> str | None:
    """Why the action is over a disk quota right now (None: within them)."""
    try:
        dev = root.stat().st_dev
    except OSError as exc:
        return f"workspace cannot be inspected: {exc.strerror}"
    walked, reason = _walk(root, limits)
    if reason is not None:
        return reason
    hidden = _unlinked_bytes(pids, dev)
    if walked + hidden > limits.workspace_bytes:
        return (f"workspace holds more than {limits.workspace_bytes} B "
                f"({hidden} B of it in unlinked files still open)")
    return _tmp_breach(pids, limits)


def _walk(root: Path, limits: SandboxLimits) -> tuple[int, str | None]:
    """Bytes under ``root``, or the breach; a walk failing ``WALK_TRIES`` times is one."""
    error = ""
    for _ in range(WALK_TRIES):
        try:
            return usage(root, limits).total_bytes, None
        except WorkspaceLimitError as exc:
            return 0, str(exc)
        except (ActionRejected, OSError) as exc:  # something moved under the walk: again
            error = getattr(exc, "strerror", None) or str(exc)
    return 0, f"workspace could not be walked {WALK_TRIES} times in a row ({error})"


def _links(pid: int) -> Iterable[Path]:
    for sub in ("fd", "map_files"):
        with contextlib.suppress(OSError):
            yield from (_PROC / str(pid) / sub).iterdir()


def _unlinked_bytes(pids: Sequence[int], dev: int) -> int:
    """Blocks of regular files on the workspace's filesystem that have no name any more but
    are still open or mapped by the action (each inode once)."""
    seen: dict[int, int] = {}
    for pid in pids:
        for link in _links(pid):
            try:
                st = link.stat()  # the magic link: the open file itself
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 0 and st.st_dev == dev:
                seen[st.st_ino] = max(st.st_size, st.st_blocks * 512)
    return sum(seen.values())


def _tmp_breach(pids: Sequence[int], limits: SandboxLimits) -> str | None:
    """The jail's /tmp over ``tmp_files`` inodes (a private tmpfs only, never the host's)."""
    try:
        host_tmp = Path("/tmp").stat().st_dev  # noqa: S108 - compared with, never written
    except OSError:
        host_tmp = -1
    for pid in pids:
        tmp = _PROC / str(pid) / "root" / "tmp"
        try:
            if tmp.stat().st_dev == host_tmp:
                continue  # not a jail of its own (jailer none): not the action's /tmp
            fs = os.statvfs(tmp)
        except OSError:
            continue
        used = fs.f_files - fs.f_ffree
        if used > limits.tmp_files:
            return f"the jail's /tmp holds more than {limits.tmp_files} files"
        return None
    return None
