"""nsjail: selectable where it is installed (Debian 12 has no package for it).

One-shot mode, a new user/mount/pid/net/ipc/uts namespace, the host uid 65534 mapped in, a
read-only root of /usr plus the allowlisted binaries, the workspace read-write at
``/workspace``, a wall-clock limit of its own and the shared limit wrappers inside.
"""

from __future__ import annotations

from pathlib import Path

from agentd.sandbox.jails.base import JAIL_WORKDIR, DataFile, JailRun, prlimit_argv

NSJAIL = "/usr/bin/nsjail"


class NsjailJail:
    """nsjail in ``-Mo`` mode with explicit mounts."""

    name = "nsjail"

    def __init__(self, binary: str = NSJAIL) -> None:
        self.binary = binary

    def build(self, run: JailRun) -> list[str]:
        argv = [self.binary, "--mode", "o", "--really_quiet", "--hostname", "sandbox"]
        if run.uid is not None and run.gid is not None:
            argv += ["--user", str(run.uid), "--group", str(run.gid)]
        argv += ["--time_limit", str(int(run.limits.wall_seconds) + 1), "--disable_proc"]
        argv += ["--bindmount_ro", "/usr", "--bindmount_ro", "/lib", "--bindmount_ro", "/lib64"]
        for path in run.ro_paths:
            argv += ["--bindmount_ro", str(path)]
        for data in run.data_files:
            if data.host_path is not None:
                argv += ["--bindmount_ro", str(data.host_path)]
        argv += ["--bindmount", f"{run.workspace}:{JAIL_WORKDIR}", "--cwd", JAIL_WORKDIR]
        argv += ["--tmpfsmount", "/tmp"]  # noqa: S108 - inside the jail
        argv += [f"--env={key}={value}" for key, value in run.env]
        # nsjail drops privileges itself, so only the limit wrapper runs inside.
        return [*argv, "--", *prlimit_argv(run.limits), *run.command]

    def cwd(self, run: JailRun) -> Path | None:
        return None

    def data_path(self, data: DataFile) -> str:
        return str(data.host_path) if data.host_path else f"/dev/fd/{data.fd}"
