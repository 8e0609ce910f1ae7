"""``agentd check`` for the jail: does the configured jailer run a real action here?

The probe is an ordinary ``ast_grep_search`` through the real jail on a throw-away workspace,
so it exercises exactly what the engine will: namespaces, mounts, seccomp, the uid drop,
the limit wrappers and the allowlisted ast-grep.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from agentd.config import Settings
from agentd.errors import AgentdError
from agentd.records import AstGrepSearch
from agentd.sandbox.binaries import Binary
from agentd.sandbox.jails import SECCOMP_JAILS
from agentd.sandbox.stats import JailReport

if TYPE_CHECKING:
    from agentd.sandbox.sandbox import Sandbox

_PROBE = AstGrepSearch(lang="python", pattern="probe($A)")


def ast_grep_version(binary: Binary | None) -> str:
    """``ast-grep --version`` ("" when the binary is missing or fails)."""
    if binary is None:
        return ""
    try:
        out = subprocess.run([str(binary.path), "--version"], capture_output=True, text=True,
                             timeout=10, env={}, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().removeprefix("ast-grep ").strip()


# Where firejail is weaker than bwrap (docs/jailers.md has the measurements and reasons).
FIREJAIL_WEAKER = (
    "firejail is setuid root: a bug in its option parsing is a local root exploit",
    "firejail costs ~7x bwrap per action (benchmarks/sandbox.py)",
    "firejail cannot filter ioctl arguments: TIOCSTI/TIOCLINUX are not refused by seccomp",
)


def _seccomp_on(sandbox: Sandbox) -> bool:
    return sandbox.config.seccomp and sandbox.jail.name in SECCOMP_JAILS


def _warnings(sandbox: Sandbox) -> list[str]:
    out = []
    if sandbox.jail.name == "none":
        out.append("UNJAILED: jailer 'none' runs model actions with no isolation at all")
    if sandbox.jail.name == "firejail":
        out += FIREJAIL_WEAKER
    if sandbox.owner.uid is None:
        out.append("daemon is not root: actions run as the daemon's own uid")
    if not _seccomp_on(sandbox):
        out.append("no seccomp filter with this configuration")
    if sandbox.cgroups.name == "none":
        out.append("NO CGROUP: actions have no per-action memory or process cap")
    return out


async def probe_jail(sandbox: Sandbox) -> JailReport:
    """Run the probe search in the jail and describe the outcome."""
    base = JailReport(works=False, jailer=sandbox.jail.name, uid=sandbox.owner.uid,
                      ast_grep_version=sandbox.ast_grep_version, seccomp=_seccomp_on(sandbox),
                      cgroup=sandbox.cgroups.name,
                      cgroup_limits=sandbox.cgroups.describe(sandbox.limits),
                      warnings=_warnings(sandbox))
    if "ast-grep" not in sandbox.binaries:
        return _replace(base, detail="ast-grep is not installed (allowlist: ast-grep)")
    try:
        ws = await sandbox.prepare_workspace("probe", {"probe.py": "probe(1)\n"})
        try:
            result = await sandbox.apply_action(ws, _PROBE, task_id="doctor")
        finally:
            await sandbox.cleanup(ws)
    except (AgentdError, OSError) as exc:
        return _replace(base, detail=f"{type(exc).__name__}: {exc}")
    if result.ok and len(result.matches) == 1:
        return _replace(base, works=True, detail="probe search ran in the jail")
    why = result.error or result.stderr.strip()[:300] or f"exit code {result.exit_code}"
    return _replace(base, detail=f"probe failed: {why}")


def _replace(report: JailReport, **changes: object) -> JailReport:
    import msgspec

    return msgspec.structs.replace(report, **changes)


async def check_jail(settings: Settings) -> JailReport:
    """The jail report for ``agentd check``; never raises for a broken jail."""
    from agentd.sandbox.sandbox import Sandbox

    try:
        sandbox = Sandbox(
            settings.sandbox,
            workspaces_dir=settings.path(settings.agentd.paths.workspaces),
            log_dir=settings.path(settings.sandbox.log_dir),
        )
    except AgentdError as exc:
        return JailReport(works=False, jailer=settings.sandbox.jailer, detail=str(exc))
    return await probe_jail(sandbox)
