"""The ``Jail`` protocol and the pieces every backend shares.

A backend turns one ``JailRun`` (what to run, on which workspace, under which limits) into
an argv. It never builds a shell string: the command and its paths go after ``--``.
Per-process limits are applied by util-linux ``prlimit`` as an exec wrapper (``preexec_fn`` is
unsafe in a threaded daemon), and when the daemon is root the last wrapper, ``setpriv``, drops
to the sandbox uid/gid with no supplementary groups, no capabilities and ``no_new_privs``
(setuid binaries then grant nothing). Memory and the number of processes are capped per
action by its cgroup (``agentd.sandbox.cgroups``), not here: ``RLIMIT_NPROC`` counts every
process of the sandbox uid on the host, so one episode could starve all the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agentd.config import SandboxLimits

PRLIMIT = "/usr/bin/prlimit"
SETPRIV = "/usr/bin/setpriv"
JAIL_WORKDIR = "/workspace"  # fixed, so results never depend on the host path
DATA_DIR = "/agentd"  # read-only files agentd hands to the tool (rule, ast-grep config)
MB = 1024 * 1024

# The environment of the jailed command: nothing inherited from the daemon.
JAIL_ENV: tuple[tuple[str, str], ...] = (
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/tmp"),  # noqa: S108 - the jail's private tmpfs, not the host's
    ("XDG_CONFIG_HOME", "/tmp/.config"),  # noqa: S108
    ("LANG", "C.UTF-8"),
    ("TERM", "dumb"),
    ("NO_COLOR", "1"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONHASHSEED", "0"),
    ("PYTEST_ADDOPTS", "-p no:cacheprovider"),
    ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"),  # host plugins must not shape a task's tests
)


@dataclass(frozen=True)
class DataFile:
    """A read-only file for the tool: at ``dest`` in a bwrap jail (copied from ``fd``), or
    at ``host_path`` for backends that cannot inject files (a private, world-readable copy:
    ``/dev/fd`` paths stop working once the uid is dropped)."""

    dest: str
    fd: int
    host_path: Path | None = None


@dataclass(frozen=True)
class JailRun:
    """Everything a backend needs to build the argv of one jailed command."""

    command: tuple[str, ...]
    workspace: Path
    limits: SandboxLimits
    ro_paths: tuple[Path, ...] = ()
    data_files: tuple[DataFile, ...] = ()
    seccomp_fd: int | None = None  # bwrap: agentd's compiled filter, passed as a file
    seccomp: bool = True  # backends with a filter of their own (firejail) apply it
    uid: int | None = None  # None: do not change uid (the daemon is not root)
    gid: int | None = None
    full_os: bool = True  # False: no /proc, only /dev/null (the ast-grep profile)
    writable: bool = True  # False: the workspace is mounted read-only (searches)
    env: tuple[tuple[str, str], ...] = field(default=JAIL_ENV)


class Jail(Protocol):
    """A jail backend: builds the argv that runs ``run.command`` confined."""

    name: str

    def build(self, run: JailRun) -> list[str]:
        """The complete argv (jailer, wrappers, command)."""
        ...

    def cwd(self, run: JailRun) -> Path | None:
        """Host working directory for the spawned jailer (None: irrelevant)."""
        ...

    def data_path(self, data: DataFile) -> str:
        """Where the jailed command finds ``data`` (a path inside the jail)."""
        ...


def prlimit_argv(limits: SandboxLimits) -> list[str]:
    """``prlimit`` with every resource limit, ending in ``--``."""
    return [
        PRLIMIT,
        # SIGXCPU at the soft limit (a clear exit status), SIGKILL a second later if ignored.
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        f"--as={limits.address_space_mb * MB}",
        f"--fsize={limits.file_size_mb * MB}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


def setpriv_argv(uid: int | None, gid: int | None) -> list[str]:
    """Drop to ``uid``/``gid`` for good; empty when the daemon is not root."""
    if uid is None or gid is None:
        return []
    return [
        SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


def wrappers(run: JailRun) -> list[str]:
    """The exec wrappers between the jailer and the command."""
    return [*prlimit_argv(run.limits), *setpriv_argv(run.uid, run.gid)]
