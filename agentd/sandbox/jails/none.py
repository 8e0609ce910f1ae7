"""No jail: only the rlimits and the uid drop. Allowed only with ``allow_unjailed: true``.

Meant for hosts where namespaces are unavailable and the operator accepts the risk; there is
no filesystem, network or PID isolation and no seccomp filter. ``agentd check`` warns loudly.
"""

from __future__ import annotations

from pathlib import Path

from agentd.sandbox.jails.base import DataFile, JailRun, wrappers


class UnjailedRunner:
    """Runs the command directly in the workspace under the limit and privilege wrappers."""

    name = "none"

    def build(self, run: JailRun) -> list[str]:
        return [*wrappers(run), *run.command]

    def cwd(self, run: JailRun) -> Path | None:
        return run.workspace

    def data_path(self, data: DataFile) -> str:
        return str(data.host_path) if data.host_path else f"/dev/fd/{data.fd}"
