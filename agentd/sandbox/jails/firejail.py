"""firejail: selectable, not the default (it is setuid root and has a CVE history).

The workspace is the only writable place; the rest of the filesystem is read-only, there is
no network, a private /dev and /tmp, no capabilities, ``no_new_privs`` and firejail's own
seccomp list. Limits still come from the shared ``prlimit``/``setpriv`` wrappers.
"""

from __future__ import annotations

from pathlib import Path

from agentd.sandbox.jails.base import DataFile, JailRun, wrappers

FIREJAIL = "/usr/bin/firejail"


class FirejailJail:
    """firejail with no profile and an explicit list of restrictions."""

    name = "firejail"

    def __init__(self, binary: str = FIREJAIL) -> None:
        self.binary = binary

    def build(self, run: JailRun) -> list[str]:
        argv = [
            self.binary, "--quiet", "--noprofile", "--net=none", "--ipc-namespace",
            "--private-dev", "--private-tmp", "--caps.drop=all", "--nonewprivs",
            "--seccomp", "--seccomp.block-secondary", "--disable-mnt", "--nodbus",
            "--hostname=sandbox", "--read-only=/", f"--read-write={run.workspace}",
        ]
        argv += [f"--env={key}={value}" for key, value in run.env]
        return [*argv, "--", *wrappers(run), *run.command]

    def cwd(self, run: JailRun) -> Path | None:
        return run.workspace

    def data_path(self, data: DataFile) -> str:
        return str(data.host_path) if data.host_path else f"/dev/fd/{data.fd}"
