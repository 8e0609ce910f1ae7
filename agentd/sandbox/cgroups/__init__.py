"""Per-action cgroups, backends side by side; ``select_cgroups`` is the one place that
picks one (``sandbox.cgroup``: auto, v2, v1 or none)."""

from __future__ import annotations

import logging
from typing import Protocol

from agentd.config import SandboxConfig, SandboxLimits
from agentd.errors import JailUnavailableError
from agentd.sandbox.cgroups import v1, v2
from agentd.sandbox.cgroups.base import (
    ActionGroup,
    CgroupBackend,
    ClosedOnce,
    NoGroup,
    Verdict,
)
from agentd.sandbox.cgroups.none import WARNING, NoCgroups

__all__ = ["ActionGroup", "Cgroups", "ClosedOnce", "NoGroup", "Verdict", "select_cgroups"]

log = logging.getLogger(__name__)


class Cgroups(CgroupBackend, Protocol):
    def close(self) -> None:
        """Remove what the backend made for itself (empty parents)."""
        ...

    def create(self, limits: SandboxLimits) -> ActionGroup:
        ...


def select_cgroups(config: SandboxConfig) -> Cgroups:
    """The backend ``config.cgroup`` names; ``auto`` prefers v2, then v1, and never falls
    back to none silently."""
    choice = config.cgroup
    if choice == "none":
        log.warning(WARNING)
        return NoCgroups()
    if choice == "v2" or (choice == "auto" and v2.usable()):
        return v2.V2Backend()
    if choice == "v1" or (choice == "auto" and v1.usable()):
        return v1.V1Backend()
    raise JailUnavailableError(
        "no usable cgroup for per-action limits (v2 with memory+pids delegated, or v1 "
        "memory+pids writable); set sandbox.cgroup: none to run without (not recommended)")
