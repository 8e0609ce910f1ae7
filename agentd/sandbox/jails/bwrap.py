"""bubblewrap, the default jail (Debian package ``bubblewrap``).

The daemon runs bwrap as root without a user namespace, so bwrap can bind the allowlisted
binaries wherever they live (even under a 0700 ``/root``); the ``setpriv`` wrapper then drops
to the real host sandbox uid. ``--disable-userns`` is not usable here (it needs
``--unshare-user``, which would map the sandbox uid back to host root); new user namespaces
are refused by the seccomp filter instead. Not ``--unshare-all``: as root it silently adds a
user namespace in which the sandbox uid is unmapped.
"""

from __future__ import annotations

import functools
from pathlib import Path

from agentd.sandbox.jails.base import DATA_DIR, JAIL_WORKDIR, DataFile, JailRun, wrappers

BWRAP = "/usr/bin/bwrap"
_NAMESPACES = (
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
)
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@functools.cache
def _root_binds() -> tuple[str, ...]:
    """``/usr`` read-only, and the merged-/usr symlinks (or dirs) beside it, as on the host."""
    out = ["--ro-bind", "/usr", "/usr"]
    for top in _TOP_LEVEL:
        p = Path(top)
        if p.is_symlink():
            out += ["--symlink", str(p.readlink()), top]
        elif p.is_dir():
            out += ["--ro-bind", top, top]
    # Only the loader cache from /etc: no passwd, resolv.conf or hosts (DNS fails by design).
    out += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", DATA_DIR]
    out += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return tuple(out)


@functools.cache
def _parents(paths: tuple[Path, ...]) -> tuple[str, ...]:
    """Mount points' parents, created 0755: bwrap would make them 0700 (root only)."""
    parents = sorted({str(p) for path in paths for p in path.parents if str(p) != "/"})
    return tuple(arg for p in parents for arg in ("--perms", "0755", "--dir", p))


def _data_dirs(dests: tuple[str, ...]) -> list[str]:
    """Directories below the data directory that nested data files need, created 0755."""
    top = Path(DATA_DIR)
    dirs = sorted({str(p) for d in dests for p in Path(d).parents if p.is_relative_to(top)
                   and p != top})
    return [arg for p in dirs for arg in ("--perms", "0755", "--dir", p)]


class BwrapJail:
    """Namespaces, a read-only root, the workspace read-write at ``/workspace``."""

    name = "bwrap"

    def __init__(self, binary: str = BWRAP) -> None:
        self.binary = binary

    def build(self, run: JailRun) -> list[str]:
        argv = [self.binary, *_NAMESPACES, "--hostname", "sandbox"]
        argv += ["--die-with-parent", "--new-session", "--clearenv", *_root_binds()]
        argv += self._scratch(run)
        argv += _parents(run.ro_paths)
        for path in run.ro_paths:
            argv += ["--ro-bind", str(path), str(path)]
        argv += _data_dirs(tuple(d.dest for d in run.data_files))
        for data in run.data_files:
            argv += ["--perms", "0444", "--ro-bind-data", str(data.fd), data.dest]
        bind = "--bind" if run.writable else "--ro-bind"
        argv += [bind, str(run.workspace), JAIL_WORKDIR, "--chdir", JAIL_WORKDIR]
        if run.seccomp_fd is not None:
            argv += ["--seccomp", str(run.seccomp_fd)]
        for key, value in run.env:
            argv += ["--setenv", key, value]
        return [*argv, "--", *wrappers(run), *run.command]

    @staticmethod
    def _scratch(run: JailRun) -> list[str]:
        # /tmp is world-writable (sticky) and size-capped: the sandbox uid is not its owner.
        tmp = ["--perms", "1777", "--size", str(run.limits.workspace_bytes),
               "--tmpfs", "/tmp"]  # noqa: S108
        if not run.full_os:  # ast-grep: least privilege, and each mount skipped saves time
            return ["--dev-bind", "/dev/null", "/dev/null", *tmp]
        return ["--proc", "/proc", "--dev", "/dev", *tmp]

    def cwd(self, run: JailRun) -> Path | None:
        return None

    def data_path(self, data: DataFile) -> str:
        return data.dest
