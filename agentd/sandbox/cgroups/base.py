"""What every cgroup backend gives one jailed action: a group, a verdict, a clean removal.

A jailed action runs in a cgroup of its own, so its memory (anonymous, page cache, SysV
shm, memfd, tmpfs — charged to the group that first touches a page), its processes and its
CPU are capped *per action*: one episode cannot starve another, and pages that belong to no
process's RSS can no longer push the host's OOM killer onto the daemon or vLLM. The child is
placed in its group before it execs the jailer, so nothing it forks ever runs outside it —
whatever the jail backend.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agentd.config import SandboxLimits
from agentd.errors import JailUnavailableError

MB = 1024 * 1024
CPU_PERIOD_US = 100_000
_REMOVE_TRIES = 200  # x 5 ms: a SIGKILLed tree takes a moment to leave the group
# One numbering per process, not per backend: every backend of a process shares the parent
# directory, so two Sandboxes (or a group an interrupted action left) must never collide.
_GROUP_SEQ = itertools.count(1)


def next_group_name() -> str:
    """A group name no other backend of this process has used (``a1``, ``a2``, ...)."""
    return f"a{next(_GROUP_SEQ)}"


@dataclass(frozen=True)
class Verdict:
    """What the group saw: which cap was hit (None: none) and the peak memory."""

    limit: str | None = None  # "memory_limit" | "process_limit"
    peak_memory_bytes: int = 0


class ActionGroup(Protocol):
    """One action's cgroup, from creation to removal."""

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as it must be spawned to start inside the group."""
        ...

    def joined(self) -> contextlib.AbstractContextManager[None]:
        """Held by the thread that spawns the child, while it spawns it."""
        ...

    def kill(self) -> None:
        """SIGKILL everything in the group (also what escaped the process group)."""
        ...

    def pids(self) -> list[int]:
        """The processes in the group right now (what the disk watchdog looks into)."""
        ...

    def close(self) -> Verdict:
        """Kill what is left, read the verdict, remove the group."""
        ...


class CgroupBackend(Protocol):
    """Makes one ``ActionGroup`` per action; picked once, by ``select_cgroups``."""

    name: str

    def create(self, limits: SandboxLimits) -> ActionGroup:
        """A new, empty group with ``limits`` applied."""
        ...

    def describe(self, limits: SandboxLimits) -> dict[str, str]:
        """The limits this backend applies to every action, for ``agentd check``."""
        ...


class NoGroup:
    """No cgroup: the action runs in the daemon's own (``cgroup: none``)."""

    def argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        yield

    def kill(self) -> None:
        return None

    def pids(self) -> list[int]:
        return []

    def close(self) -> Verdict:
        return Verdict()


class ClosedOnce:
    """An ``ActionGroup`` whose ``close`` runs once: the owner may close it in a ``finally``
    whatever path the action took, and a group the process runner closed is not touched
    again."""

    def __init__(self, group: ActionGroup) -> None:
        self._group = group
        self.verdict: Verdict | None = None

    @property
    def closed(self) -> bool:
        return self.verdict is not None

    def argv(self, argv: Sequence[str]) -> list[str]:
        return self._group.argv(argv)

    def joined(self) -> contextlib.AbstractContextManager[None]:
        return self._group.joined()

    def kill(self) -> None:
        self._group.kill()

    def pids(self) -> list[int]:
        return self._group.pids()

    def close(self) -> Verdict:
        if self.verdict is None:
            self.verdict = self._group.close()
        return self.verdict


def write(path: Path, value: str) -> None:
    """Write one cgroup control file; a refusal is a backend that cannot work here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise JailUnavailableError(f"cgroup: cannot open {path}: {exc.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise JailUnavailableError(f"cgroup: cannot write {value!r} to {path}: "
                                   f"{exc.strerror}") from None
    finally:
        os.close(fd)


def read_keyed(path: Path) -> dict[str, int]:
    """A flat ``key value`` control file (memory.events, pids.events …); missing: empty."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def read_int(path: Path) -> int:
    """A single-number control file; missing or unparsable: 0."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def members(procs: Path) -> list[int]:
    """The pids listed in a ``cgroup.procs`` file (gone: none)."""
    try:
        return [int(p) for p in procs.read_text().split()]
    except (OSError, ValueError):
        return []


def kill_members(procs: Path) -> None:
    for pid in members(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def remove_dirs(dirs: Sequence[Path], procs: Path) -> None:
    """Kill the members and ``rmdir`` the group's directories (leaf first); bounded."""
    for _ in range(_REMOVE_TRIES):
        kill_members(procs)
        try:
            for d in dirs:
                with contextlib.suppress(FileNotFoundError):
                    d.rmdir()
            return
        except OSError:  # EBUSY: a killed task has not left yet
            time.sleep(0.005)
    raise JailUnavailableError(f"cgroup: {dirs[0]} still busy after its tree was killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale(home: Path) -> None:
    """Remove the empty ``agentd-<pid>`` groups of agentd processes that are gone (a parent
    is only removed when the process exits cleanly; a crash leaves it behind)."""
    for parent in home.glob("agentd-*"):
        pid = parent.name.removeprefix("agentd-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        for child in parent.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


def own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and ``""`` for the v2 hierarchy."""
    out: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def mounts(fstype: str) -> list[tuple[str, str, set[str]]]:
    """``(root, mount point, super options)`` of every mount of ``fstype``."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] == fstype:
            out.append((fields[3], fields[4], set(rest[2].split(","))))
    return out


def host_dir(root: str, mountpoint: str, own: str) -> Path | None:
    """Where the cgroup ``own`` appears under a mount of its hierarchy rooted at ``root``."""
    if own != root and not own.startswith(root.rstrip("/") + "/"):
        return None
    return Path(mountpoint + own[len(root.rstrip("/")):])


def writable_dir(path: Path | None) -> bool:
    return path is not None and path.is_dir() and os.access(path, os.W_OK)
