"""cgroup v1: the ``memory`` and ``pids`` controllers (and ``cpu`` where mounted).

Groups are made under the daemon's own cgroup in each hierarchy (``<own>/agentd-<pid>/aN``).
v1 moves single threads, so the worker thread that spawns the child joins the group for the
duration of the spawn and leaves again: the child is born inside the group, before it execs
the jailer, and the daemon itself is never charged.
"""

from __future__ import annotations

import atexit
import contextlib
import os
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
    reap_stale,
    remove_dirs,
    writable_dir,
    write,
)

REQUIRED = ("memory", "pids")
OPTIONAL = ("cpu",)


def controller_dirs() -> dict[str, Path]:
    """The daemon's own, writable cgroup directory for each v1 controller mounted here."""
    own = own_cgroups()
    out: dict[str, Path] = {}
    for root, mountpoint, options in mounts("cgroup"):
        for name in (*REQUIRED, *OPTIONAL):
            if name in options and name in own and name not in out:
                path = host_dir(root, mountpoint, own[name])
                if writable_dir(path):
                    assert path is not None
                    out[name] = path
    return out


def usable() -> bool:
    return all(name in controller_dirs() for name in REQUIRED)


class V1Group:
    """One action's directories, one per controller."""

    def __init__(self, dirs: dict[str, Path], home: dict[str, Path], processes: int) -> None:
        self._dirs = dirs
        self._home = home
        self._processes = processes

    def argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        # "0" is the writing thread: this worker thread only, never the whole daemon.
        entered: list[str] = []
        try:
            for name, path in self._dirs.items():
                try:
                    write(path / "tasks", "0")
                except JailUnavailableError:
                    if name in REQUIRED:
                        raise
                    continue  # cpu refuses a real-time thread (no rt_runtime): cpu-rlimit only
                entered.append(name)
            yield
        finally:
            for name in entered:
                write(self._home[name] / "tasks", "0")
            if "pids" in entered:  # the thread has left: its slot is the action's no more
                write(self._dirs["pids"] / "pids.max", str(self._processes))

    def kill(self) -> None:
        kill_members(self._dirs["pids"] / "cgroup.procs")

    def pids(self) -> list[int]:
        return members(self._dirs["pids"] / "cgroup.procs")

    def close(self) -> Verdict:
        self.kill()
        verdict = self._verdict()
        remove_dirs(list(self._dirs.values()), self._dirs["pids"] / "cgroup.procs")
        return verdict

    def _verdict(self) -> Verdict:
        mem = self._dirs["memory"]
        peak = read_int(mem / "memory.max_usage_in_bytes")
        if read_keyed(mem / "memory.oom_control").get("oom_kill", 0) > 0:
            return Verdict("memory_limit", peak)
        if read_keyed(self._dirs["pids"] / "pids.events").get("max", 0) > 0:
            return Verdict("process_limit", peak)
        return Verdict(None, peak)


class V1Backend:
    """Per-action groups in the v1 hierarchies this process sits in."""

    name = "v1"

    def __init__(self) -> None:
        self._home = controller_dirs()
        missing = [c for c in REQUIRED if c not in self._home]
        if missing:
            raise JailUnavailableError(
                f"cgroup v1: no writable {'/'.join(missing)} controller for this process")
        self._parents = {n: p / f"agentd-{os.getpid()}" for n, p in self._home.items()}
        for home in self._home.values():
            reap_stale(home)
        atexit.register(self.close)  # the empty parents go with the process

    def create(self, limits: SandboxLimits) -> V1Group:
        name = next_group_name()
        dirs: dict[str, Path] = {}
        try:
            for controller, parent in self._parents.items():
                parent.mkdir(exist_ok=True)
                (parent / name).mkdir()
                dirs[controller] = parent / name
            self._apply(dirs, limits)
        except OSError as exc:
            raise JailUnavailableError(f"cgroup v1: cannot create {name}: {exc}") from None
        except BaseException:
            remove_dirs(list(dirs.values()), dirs.get("pids", Path("/nonexistent")))
            raise
        return V1Group(dirs, self._home, limits.processes)

    @staticmethod
    def _apply(dirs: dict[str, Path], limits: SandboxLimits) -> None:
        mem = dirs["memory"]
        write(mem / "memory.limit_in_bytes", str(limits.memory_mb * MB))
        if (mem / "memory.memsw.limit_in_bytes").exists():  # swap counts too: no escape there
            write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_mb * MB))
        # +1: the spawning thread is a member for the instant the child is forked.
        write(dirs["pids"] / "pids.max", str(limits.processes + 1))
        if "cpu" in dirs:
            write(dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            write(dirs["cpu"] / "cpu.cfs_quota_us", str(int(limits.cpu_cores * CPU_PERIOD_US)))

    def describe(self, limits: SandboxLimits) -> dict[str, str]:
        out = {"memory": f"{limits.memory_mb} MiB (incl. page cache, shm, memfd, swap)",
               "pids": str(limits.processes)}
        out["cpu"] = f"{limits.cpu_cores:g} cores" if "cpu" in self._home else "not mounted"
        out["under"] = ", ".join(f"{n}:{p}" for n, p in sorted(self._parents.items()))
        return out

    def close(self) -> None:
        """Remove the (empty) parent directories."""
        for parent in self._parents.values():
            with contextlib.suppress(OSError):
                parent.rmdir()
