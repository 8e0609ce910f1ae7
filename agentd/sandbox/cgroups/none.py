"""No cgroup (``cgroup: none``): per-process rlimits only. Memory a process does not map
(SysV shm, memfd, page cache) and the number of processes are then not capped per action."""

from __future__ import annotations

from agentd.config import SandboxLimits
from agentd.sandbox.cgroups.base import NoGroup

WARNING = ("sandbox.cgroup is none: actions have NO per-action memory or process cap "
           "(shm, memfd and forks can exhaust the host)")


class NoCgroups:
    name = "none"

    def create(self, limits: SandboxLimits) -> NoGroup:
        return NoGroup()

    def describe(self, limits: SandboxLimits) -> dict[str, str]:
        return {"memory": "NOT CAPPED", "pids": "NOT CAPPED", "cpu": "rlimit only",
                "warning": WARNING}

    def close(self) -> None:
        return None
