"""Jail backends side by side; ``select_jail`` is the one place the config picks one."""

from __future__ import annotations

from agentd.config import SandboxConfig
from agentd.errors import JailUnavailableError
from agentd.sandbox.jails.base import JAIL_WORKDIR, DataFile, Jail, JailRun
from agentd.sandbox.jails.bwrap import BwrapJail
from agentd.sandbox.jails.firejail import FirejailJail
from agentd.sandbox.jails.none import UnjailedRunner

__all__ = ["JAIL_WORKDIR", "SECCOMP_JAILS", "DataFile", "Jail", "JailRun", "select_jail"]

# Backends that put the jailed command under a seccomp filter (when ``seccomp: true``).
SECCOMP_JAILS = frozenset({"bwrap", "firejail"})


def select_jail(config: SandboxConfig) -> Jail:
    """The backend named by ``config.jailer``; ``none`` only with ``allow_unjailed``."""
    if config.jailer == "bwrap":
        return BwrapJail()
    if config.jailer == "firejail":
        return FirejailJail()
    if config.jailer != "none":  # nsjail: refused by the config model, and here
        raise JailUnavailableError(f"jailer {config.jailer!r} is unavailable")
    if not config.allow_unjailed:  # the config model refuses this too; belt and braces
        raise JailUnavailableError("jailer 'none' needs allow_unjailed: true")
    return UnjailedRunner()
