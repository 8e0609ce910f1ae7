"""``agentd check``: a doctor for the host — configs, ast-grep, jail, sandbox uid, disk, actors.

Each check prints one line ``ok|warn|FAIL  name  detail``; the exit code is 1 when any check
failed. Unreachable actors are a warning: a host may collect with the reference policy only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import sys
from dataclasses import dataclass
from typing import Literal

import anyio

from agentd.config import Settings, load_settings
from agentd.sandbox.stats import JailReport

Level = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True)
class Finding:
    level: Level
    name: str
    detail: str


def _check_configs(settings: Settings) -> Finding:
    s = settings
    return Finding("ok", "configs", f"{s.config_path} (root {s.root}, hash {s.config_hash}, "
                   f"{len(s.actors.actors)} actors, {len(s.datasets.datasets)} datasets)")


def _check_uid(settings: Settings) -> Finding:
    uid = settings.sandbox.uid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = "(no passwd entry)"
    if os.getuid() != 0 and uid != os.getuid():
        return Finding("warn", "sandbox uid", f"{uid} {name}: not root, the jail runs as "
                       f"uid {os.getuid()} instead")
    return Finding("ok", "sandbox uid", f"{uid} {name} (never root)")


def _check_state_dir(settings: Settings) -> list[Finding]:
    state_dir = settings.path(settings.agentd.paths.state_dir)
    out: list[Finding] = []
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / ".agentd-check"
        probe.write_text("ok")
        probe.unlink()
        out.append(Finding("ok", "state dir", f"{state_dir} writable"))
    except OSError as exc:
        out.append(Finding("FAIL", "state dir", f"{state_dir}: {exc.strerror}"))
        return out
    free = shutil.disk_usage(state_dir).free
    level: Level = "ok" if free > 2 << 30 else "warn"
    out.append(Finding(level, "disk", f"{free / (1 << 30):.1f} GiB free under {state_dir}"))
    return out


async def _check_jail(settings: Settings) -> list[Finding]:
    from agentd.sandbox.doctor import check_jail

    report = await check_jail(settings)
    out = [Finding("ok" if report.ast_grep_version else "FAIL", "ast-grep",
                   report.ast_grep_version or "not found (pip install ast-grep-cli)")]
    jail_level: Level = "ok" if report.works else "FAIL"
    if settings.sandbox.jailer == "none":
        jail_level = "warn"
        out.append(Finding("warn", "UNJAILED", "jailer 'none': model actions run WITHOUT a jail"))
    out.append(Finding(jail_level, "jail", f"{report.jailer}: {report.detail}"))
    # What the chosen backend does not guarantee (firejail's weaknesses against bwrap, ...).
    notes = [w for w in report.warnings if not w.startswith("UNJAILED")]  # printed above
    out += [Finding("warn", "jail-note", w) for w in notes]
    out.append(_cgroup_finding(report))
    return out


def _cgroup_finding(report: JailReport) -> Finding:
    """Which per-action cgroup backend runs the actions, and the limits it applies."""
    if not report.cgroup:
        return Finding("FAIL", "cgroup", "not set up (see the jail line)")
    limits = ", ".join(f"{k} {v}" for k, v in report.cgroup_limits.items() if k != "warning")
    level: Level = "warn" if report.cgroup == "none" else "ok"
    return Finding(level, "cgroup", f"{report.cgroup}: {limits}")


async def _check_actors(settings: Settings) -> list[Finding]:
    if not settings.actors.actors:
        return [Finding("warn", "actors", "none configured")]
    from agentd.policies.factory import probe_actors

    out = []
    for probe in await probe_actors(settings):
        level: Level = "ok" if probe.get("ready") else "warn"
        out.append(Finding(level, f"actor {probe.get('name')}",
                           f"{probe.get('url')}: {probe.get('detail', '')}"))
    return out


async def run_checks(settings: Settings) -> list[Finding]:
    findings = [_check_configs(settings), _check_uid(settings), *_check_state_dir(settings)]
    findings += await _check_jail(settings)
    findings += await _check_actors(settings)
    return findings


def check_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    findings = anyio.run(run_checks, settings)
    for f in findings:
        print(f"{f.level:<5} {f.name:<14} {f.detail}")
    failed = [f for f in findings if f.level == "FAIL"]
    if failed:
        print(f"agentd check: {len(failed)} check(s) failed", file=sys.stderr)
    return 1 if failed else 0
