"""firejail: selectable, not the default (it is setuid root and costs ~7x bwrap per spawn).

firejail is started by the root daemon, so the sandbox it builds is root's: the uid drop is
the shared ``setpriv`` wrapper inside it. That is why the capability set firejail leaves is
``setuid,setgid,setpcap`` rather than none: exactly what ``setpriv`` needs to become the
sandbox uid, clear groups and empty the bounding set; the jailed command itself ends with no
capability, ``no_new_privs`` and uid 65534. Nothing runs between firejail and ``setpriv``
except ``prlimit``.

What the argv guarantees (docs/jailers.md compares it with bwrap):
- no ``--`` before the command: with ``--`` firejail 0.9.72 runs the command through
  ``/bin/bash -c``; without it firejail execs the absolute path of ``prlimit`` directly;
- no network, private IPC/UTS/PID namespaces, a private /dev, a private /tmp holding only the
  workspace and data directory (when they live in /tmp), a read-only root, the workspace the
  only writable path;
- firejail's seccomp list plus agentd's deny-list by name, foreign ABIs blocked, and new
  namespaces refused with argument inspection (``--restrict-namespaces``; clone3 answers
  ENOSYS). firejail cannot inspect ioctl arguments, so TIOCSTI/TIOCLINUX are not filtered;
  the command has no controlling terminal and stdin is /dev/null, so they have nothing to act on;
- the allowlisted binaries under the invoking user's home (``/root``, 0700) are whitelisted
  into a fresh tmpfs that is made traversable (see ``_home_binds``).
"""

from __future__ import annotations

from pathlib import Path

from agentd.sandbox.jails.base import DataFile, JailRun, wrappers
from agentd.sandbox.seccomp import DENIED_SYSCALLS

FIREJAIL = "/usr/bin/firejail"
ENV = "/usr/bin/env"  # coreutils: the last wrapper, so the command sees exactly run.env
ROOT_HOME = Path("/root")  # the daemon runs firejail as root: firejail treats this as $HOME
TMP = Path("/tmp")  # noqa: S108 - the host /tmp, replaced by a private tmpfs in the jail
# An existing, empty, 0755 directory: the target of the bind that makes /root traversable.
MODE_DONOR = "/srv"
# What setpriv needs to drop to the sandbox uid; it empties the bounding set itself.
_DROP_CAPS = "setuid,setgid,setpcap"

_STATIC = (
    "--quiet", "--noprofile", "--net=none", "--ipc-namespace", "--hostname=sandbox",
    "--private-dev", "--private-tmp", "--disable-mnt", "--dbus-system=none", "--dbus-user=none",
    "--nogroups", f"--caps.keep={_DROP_CAPS}", "--nonewprivs",
    "--deterministic-exit-code", "--deterministic-shutdown", "--read-only=/",
)
_SECCOMP = (
    # firejail skips names it does not know without a word: test_denied_syscalls checks
    # by behaviour that the list took effect.
    "--seccomp=" + ",".join(DENIED_SYSCALLS),
    "--seccomp.block-secondary", "--restrict-namespaces",
)


def _under(path: Path, top: Path) -> bool:
    return path == top or path.is_relative_to(top)


def _home_binds(ro_paths: tuple[Path, ...]) -> list[str]:
    """Whitelist the allowlisted binaries that live under /root (a venv's base interpreter).

    firejail whitelists them into a tmpfs on /root with /root's own mode, 0700, which the
    sandbox uid cannot traverse. Binding that tmpfs onto a 0755 directory makes firejail give
    the tmpfs (its bind source) the target's mode: /root becomes 0755 inside this jail only,
    holding nothing but the whitelisted, read-only paths. The host's /root is untouched.
    """
    inside = [p for p in ro_paths if _under(p, ROOT_HOME)]
    if not inside:
        return []
    return [*(f"--whitelist={p}" for p in inside), f"--bind={ROOT_HOME},{MODE_DONOR}"]


def _tmp_top(path: Path) -> Path:
    """The directory right below /tmp that holds ``path`` (data files may nest in it)."""
    if path.is_relative_to(TMP) and len(path.relative_to(TMP).parts) > 1:
        return TMP / path.relative_to(TMP).parts[0]
    return path.parent


def _tmp_whitelist(run: JailRun) -> list[str]:
    """The private /tmp hides the host's: bring back the workspace, the data directory and the
    allowlisted binaries when they live there (tests do, and so does a checkout cloned into
    /tmp with its venv; a production install does not)."""
    wanted = [run.workspace, *run.ro_paths]
    wanted += [_tmp_top(d.host_path) for d in run.data_files if d.host_path is not None]
    unique = dict.fromkeys(p for p in wanted if _under(p, TMP) and p != TMP)
    return [f"--whitelist={p}" for p in unique]


class FirejailJail:
    """firejail with no profile and an explicit list of restrictions."""

    name = "firejail"

    def __init__(self, binary: str = FIREJAIL) -> None:
        self.binary = binary

    def build(self, run: JailRun) -> list[str]:
        argv = [self.binary, *_STATIC, *(_SECCOMP if run.seccomp else ())]
        argv += [*_tmp_whitelist(run), *_home_binds(run.ro_paths)]
        argv.append(f"--{'read-write' if run.writable else 'read-only'}={run.workspace}")
        # firejail adds variables of its own (container, DBUS_*, FIREJAIL_QUIET, ...) and
        # passes root's through: ``env -i`` after the uid drop leaves only the jail's.
        clean = [ENV, "-i", *(f"{key}={value}" for key, value in run.env)]
        # No "--": the command starts with prlimit's absolute path, which ends firejail's
        # options, and firejail then execs it instead of handing it to a shell.
        return [*argv, *wrappers(run), *clean, *run.command]

    def cwd(self, run: JailRun) -> Path | None:
        return run.workspace

    def data_path(self, data: DataFile) -> str:
        return str(data.host_path) if data.host_path else f"/dev/fd/{data.fd}"
