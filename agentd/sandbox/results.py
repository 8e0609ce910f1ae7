"""From what happened to a ``SandboxResult``: classification, caps, read_file in Python."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

from agentd.config import SandboxLimits
from agentd.records import ErrorKind, ReadFile, SandboxResult
from agentd.sandbox.diffing import changed_files, unified_diff
from agentd.sandbox.matches import parse_matches
from agentd.sandbox.paths import ActionRejected, check_relative, resolve_inside
from agentd.sandbox.plans import Plan
from agentd.sandbox.process import RawRun

# A child killed by a signal shows up through bwrap as 128 + signal number.
_LIMIT_SIGNALS = {
    128 + signal.SIGXFSZ: "file_size_limit",
    128 + signal.SIGXCPU: "cpu_limit",
    # Inside the jail only the kernel sends SIGKILL: the hard CPU limit or the OOM killer.
    128 + signal.SIGKILL: "killed_by_kernel",
}


_CGROUP_LIMITS = {
    "memory_limit": "the action's memory cap (memory_mb, shm and page cache included) was hit: "
                    "killed",
    "process_limit": "the action's process cap (processes) was hit: forks were refused",
}


def _killed(raw: RawRun) -> tuple[str, str] | None:
    """The cap that stopped the run, by agentd's own kill or the action's cgroup."""
    if raw.killed_reason == "output_limit":
        return "output_limit", "output over its cap: process tree killed"
    if raw.killed_reason == "watchdog":
        return "workspace_limit", f"{raw.kill_detail}: process tree killed"
    if raw.limit_hit is not None:
        return raw.limit_hit, _CGROUP_LIMITS.get(raw.limit_hit, raw.limit_hit)
    return None


def clip_text(data: bytes, cap: int) -> str:
    """``data`` as text, cut to ``cap`` bytes with a marker when cut."""
    if len(data) <= cap:
        return data.decode("utf-8", "replace")
    return data[:cap].decode("utf-8", "ignore") + f"\n... [truncated, {len(data)} bytes]"


def rejected(exc: ActionRejected) -> SandboxResult:
    """The result of an action refused before (or after) running."""
    return SandboxResult(exit_code=None, error_kind=exc.kind, error=str(exc)[:500])


def _hit_file_size(before: dict[str, bytes], after: dict[str, bytes],
                   limits: SandboxLimits) -> bool:
    # Python and many tools ignore SIGXFSZ and get EFBIG instead: a changed file sitting
    # exactly at the cap is the trace the limit leaves.
    cap = limits.file_size_mb * 1024 * 1024
    return any(len(data) >= cap for p, data in after.items() if before.get(p) != data)


def _classify(raw: RawRun, plan: Plan) -> tuple[ErrorKind, str | None, str]:
    if raw.timed_out:
        return "timeout", "timeout", f"killed after {plan.wall_s:g}s wall clock"
    killed = _killed(raw)
    if killed is not None:
        return "limit", *killed
    code = raw.exit_code
    if code in _LIMIT_SIGNALS:
        return "limit", _LIMIT_SIGNALS[code], f"stopped by a resource limit ({code})"
    if plan.ok_codes is not None and code not in plan.ok_codes:
        return "tool_error", None, f"{plan.binary} exited with {code}"
    return "none", None, ""


def from_run(raw: RawRun, plan: Plan, before: dict[str, bytes], after: dict[str, bytes],
             limits: SandboxLimits, *, override: ActionRejected | None = None) -> SandboxResult:
    """Assemble the result of a finished process (``override``: the workspace check failed)."""
    kind, reason, error = _classify(raw, plan)
    if kind == "none" and _hit_file_size(before, after, limits):
        kind, reason, error = "limit", "file_size_limit", "a file reached file_size_mb"
    if override is not None and kind == "none":
        reason = "workspace_limit" if override.kind == "limit" else None
        kind, error = override.kind, str(override)[:500]
    matches, partial = parse_matches(raw.stdout, limits.max_matches) if plan.wants_matches \
        else ([], False)
    stdout = b"" if plan.wants_matches else raw.stdout
    return SandboxResult(
        exit_code=raw.exit_code, timed_out=raw.timed_out, killed_reason=reason,
        stdout=clip_text(stdout, limits.result_text_bytes),
        stderr=clip_text(raw.stderr, limits.result_text_bytes),
        duration_ms=round(raw.duration_ms, 3), changed_files=changed_files(before, after),
        diff=unified_diff(before, after, limits.diff_bytes), matches=matches,
        error_kind=kind, error=error or ("matches truncated" if partial else ""),
    )


def _line_range(text: str, action: ReadFile) -> str:
    start, end = action.start_line, action.end_line
    if start is None and end is None:
        return text
    if (start is not None and start < 1) or (end is not None and end < (start or 1)):
        raise ActionRejected("invalid_action", "bad line range (1-based, start <= end)")
    lines = text.splitlines(keepends=True)
    return "".join(lines[(start or 1) - 1:end])


def read_file(workspace: Path, action: ReadFile, limits: SandboxLimits) -> SandboxResult:
    """``read_file`` in Python: no process, no-follow open, regular files only, capped."""
    path = resolve_inside(workspace, check_relative(action.path))
    shown = action.path[:80]
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):  # a socket, FIFO or device is never opened at all
            raise ActionRejected("invalid_action", f"not a regular file: {shown!r}")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # gone, or swapped for something unopenable after the lstat
        raise ActionRejected("invalid_action", f"cannot read {shown!r}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ActionRejected("invalid_action", f"not a regular file: {shown!r}")
        if st.st_nlink > 1:
            raise ActionRejected("path_escape", f"hard-linked file: {shown!r}")
        data = os.read(fd, limits.read_file_bytes + 1)
    finally:
        os.close(fd)
    cut = len(data) > limits.read_file_bytes
    text = _line_range(data[: limits.read_file_bytes].decode("utf-8", "replace"), action)
    note = f"file is larger than {limits.read_file_bytes} bytes: truncated" if cut else ""
    return SandboxResult(exit_code=0, stdout=text, stderr=note)
