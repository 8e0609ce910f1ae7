"""cgroup v2 (a systemd host with ``Delegate=yes`` in the unit, or any writable subtree).

v2 forbids processes in a group whose controllers are delegated further down, and moves
whole processes only. So at start the daemon moves itself into ``<own>/daemon``, enables
``memory pids cpu`` for ``<own>/actions``, and each action gets ``<own>/actions/aN``. The
child joins its group through a one-line stub that writes its own pid into ``cgroup.procs``
and then execs the jailer — still before the jailer runs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from agentd.config import SandboxLimits
from agentd.errors import JailUnavailableError
from agentd.sandbox.cgroups.base import (
    CPU_PERIOD_US,
    MB,
    Verdict,
    host_dir,
    kill_members,
    members,
    mounts,
    next_group_name,
    own_cgroups,
    read_int,
    read_keyed,
    remove_dirs,
    writable_dir,
    write,
)

REQUIRED = {"memory", "pids"}
# argv[1] is the group's cgroup.procs; "0" there means the writing process itself.
_STUB = ("import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY)\nos.write(fd,b'0')\nos.close(fd)\n"
         "os.execv(sys.argv[2],sys.argv[2:])")


def own_dir() -> Path | None:
    """The daemon's own v2 cgroup directory, if it is writable."""
    own = own_cgroups().get("")
    if own is None:
        return None
    for root, mountpoint, _ in mounts("cgroup2"):
        path = host_dir(root, mountpoint, own)
        if writable_dir(path):
            return path
    return None


def controllers(path: Path) -> set[str]:
    try:
        return set((path / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def usable() -> bool:
    path = own_dir()
    return path is not None and controllers(path) >= REQUIRED


class V2Group:
    def __init__(self, path: Path) -> None:
        self._path = path

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [sys.executable, "-I", "-S", "-c", _STUB, str(self._path / "cgroup.procs"),
                *argv]

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        yield

    def kill(self) -> None:
        if (self._path / "cgroup.kill").exists():
            with contextlib.suppress(JailUnavailableError):
                write(self._path / "cgroup.kill", "1")
        kill_members(self._path / "cgroup.procs")

    def pids(self) -> list[int]:
        return members(self._path / "cgroup.procs")

    def close(self) -> Verdict:
        self.kill()
        peak = read_int(self._path / "memory.peak")
        verdict = Verdict(None, peak)
        if read_keyed(self._path / "memory.events").get("oom_kill", 0) > 0:
            verdict = Verdict("memory_limit", peak)
        elif read_keyed(self._path / "pids.events").get("max", 0) > 0:
            verdict = Verdict("process_limit", peak)
        remove_dirs([self._path], self._path / "cgroup.procs")
        return verdict


class V2Backend:
    name = "v2"

    def __init__(self) -> None:
        own = own_dir()
        if own is None or not controllers(own) >= REQUIRED:
            raise JailUnavailableError("cgroup v2: no writable group with memory and pids "
                                       "(a systemd unit needs Delegate=yes)")
        self._own = own
        self._actions = own / "actions"
        self._cpu = "cpu" in controllers(own)
        self._delegate()

    def _delegate(self) -> None:
        wanted = " ".join(f"+{c}" for c in sorted(REQUIRED | ({"cpu"} if self._cpu else set())))
        if self._own.name != "daemon" or not (self._own.parent / "actions").is_dir():
            leaf = self._own / "daemon"
            leaf.mkdir(exist_ok=True)
            for pid in (self._own / "cgroup.procs").read_text().split():
                write(leaf / "cgroup.procs", pid)  # no internal processes under delegation
        else:  # a restart inside the same unit: we already live in <own>/daemon
            self._own = self._own.parent
            self._actions = self._own / "actions"
        write(self._own / "cgroup.subtree_control", wanted)
        self._actions.mkdir(exist_ok=True)
        write(self._actions / "cgroup.subtree_control", wanted)

    def create(self, limits: SandboxLimits) -> V2Group:
        path = self._actions / next_group_name()
        try:
            path.mkdir()
            write(path / "memory.max", str(limits.memory_mb * MB))
            if (path / "memory.swap.max").exists():
                write(path / "memory.swap.max", "0")
            write(path / "pids.max", str(limits.processes))
            if self._cpu:
                write(path / "cpu.max", f"{int(limits.cpu_cores * CPU_PERIOD_US)} "
                                        f"{CPU_PERIOD_US}")
        except OSError as exc:
            raise JailUnavailableError(f"cgroup v2: cannot create {path}: {exc}") from None
        except BaseException:
            remove_dirs([path], path / "cgroup.procs")
            raise
        return V2Group(path)

    def describe(self, limits: SandboxLimits) -> dict[str, str]:
        return {"memory": f"{limits.memory_mb} MiB (incl. page cache, shm, memfd; no swap)",
                "pids": str(limits.processes),
                "cpu": f"{limits.cpu_cores:g} cores" if self._cpu else "not delegated",
                "under": str(self._actions)}

    def close(self) -> None:
        return None
