"""Run one jailed process: bounded time, bounded output, nothing left behind.

The jailer starts in its own session (so its process group can be killed as a whole) with
an empty environment, stdin from /dev/null and only the file descriptors we name. Both pipes
are drained concurrently the whole time: a child blocked on a full pipe never exits, and
after a kill a grandchild may still hold the pipe open, so draining goes on (bounded) until
EOF. Output past ``output_bytes`` kills the tree at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, Process

from agentd.sandbox.cgroups.base import ActionGroup, NoGroup, Verdict
from agentd.sandbox.spawn import spawn

DRAIN_GRACE_S = 2.0  # after a kill: how long to wait for the pipes to close
WATCH_EVERY_S = 0.25
_CHUNK = 65536

# Polled while the process runs; a non-None answer is a kill reason (e.g. workspace quota).
Watch = Callable[[], Awaitable[str | None]]


@dataclass
class _Output:
    """Both streams share one byte budget; past it the process tree is killed."""

    limit: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    over: bool = False
    watch_reason: str | None = None

    def room(self) -> int:
        return max(0, self.limit - len(self.stdout) - len(self.stderr))


@dataclass(frozen=True)
class RawRun:
    """What came back from one process."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    duration_ms: float
    timed_out: bool = False
    killed_reason: str | None = None
    kill_detail: str = ""  # what the watch reported, when it killed
    limit_hit: str | None = None  # the action's cgroup: memory_limit, process_limit
    peak_memory_bytes: int = 0


def kill_group(pid: int) -> None:
    """SIGKILL the whole process group led by ``pid`` (already gone is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Countdown:
    """Set once ``n`` parties have called ``done``."""

    def __init__(self, n: int) -> None:
        self._left = n
        self._event = anyio.Event()

    def done(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


async def _drain(stream: ByteReceiveStream | None, sink: bytearray, out: _Output,
                 pid: int, finished: _Countdown) -> None:
    try:
        if stream is not None:
            await _pump(stream, sink, out, pid)
    finally:
        finished.done()


async def _pump(stream: ByteReceiveStream, sink: bytearray, out: _Output, pid: int) -> None:
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError,
                             anyio.BrokenResourceError):
        while True:
            chunk = await stream.receive(_CHUNK)
            room = out.room()
            sink += chunk[:room]
            if len(chunk) > room and not out.over:
                out.over = True
                kill_group(pid)


async def _wait(proc: Process, wall_s: float) -> bool:
    """Wait for exit; on timeout kill the tree. True when it timed out."""
    with anyio.move_on_after(wall_s):
        await proc.wait()
        return False
    kill_group(proc.pid)
    return True


async def run_process(argv: Sequence[str], *, wall_s: float, output_bytes: int,
                      pass_fds: Sequence[int] = (), cwd: Path | None = None,
                      watch: Watch | None = None, group: ActionGroup | None = None) -> RawRun:
    """Run ``argv`` to completion or until ``wall_s``; never raises for the child's sake.

    ``watch`` is polled every ``WATCH_EVERY_S`` while the process runs; when it returns a
    reason the tree is killed (``killed_reason="watchdog"``, the reason in ``kill_detail``).
    ``group`` (the action's cgroup) is closed here: whatever is left in it is killed, even
    what left the process group, and its verdict says which cap was hit.
    """
    out = _Output(limit=output_bytes)
    started = time.perf_counter()
    group = group or NoGroup()
    try:
        proc = await spawn(argv, pass_fds=pass_fds, cwd=cwd, group=group)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(group.close)
        raise
    try:
        timed_out = await _supervise(proc, out, wall_s, watch)
    finally:
        with anyio.CancelScope(shield=True):
            if proc.returncode is None:  # cancelled from outside: take the tree down with us
                kill_group(proc.pid)
                await _until_eof(proc)
            await proc.aclose()
            verdict: Verdict = await anyio.to_thread.run_sync(group.close)
    reason = "timeout" if timed_out else ("output_limit" if out.over else None)
    if reason is None and out.watch_reason is not None:
        reason = "watchdog"
    return RawRun(
        exit_code=proc.returncode, stdout=bytes(out.stdout), stderr=bytes(out.stderr),
        duration_ms=(time.perf_counter() - started) * 1000, timed_out=timed_out,
        killed_reason=reason, kill_detail=out.watch_reason or "",
        limit_hit=verdict.limit, peak_memory_bytes=verdict.peak_memory_bytes,
    )


async def _watchdog(proc: Process, out: _Output, watch: Watch) -> None:
    while proc.returncode is None:
        await anyio.sleep(WATCH_EVERY_S)
        reason = await watch()
        if reason is not None and proc.returncode is None:
            out.watch_reason = reason
            kill_group(proc.pid)
            return


async def _supervise(proc: Process, out: _Output, wall_s: float, watch: Watch | None) -> bool:
    finished = _Countdown(2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_drain, proc.stdout, out.stdout, out, proc.pid, finished)
        tg.start_soon(_drain, proc.stderr, out.stderr, out, proc.pid, finished)
        if watch is not None:
            tg.start_soon(_watchdog, proc, out, watch)
        timed_out = await _wait(proc, wall_s)
        kill_group(proc.pid)  # stragglers that left the leader behind die with the group
        with anyio.move_on_after(DRAIN_GRACE_S):
            await finished.wait()
        tg.cancel_scope.cancel()
    return timed_out


async def _until_eof(proc: Process) -> None:
    """Discard output until every holder of the pipes is dead (bounded by the grace)."""
    sink = _Output(limit=0)
    with anyio.move_on_after(DRAIN_GRACE_S):
        async with anyio.create_task_group() as tg:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    tg.start_soon(_pump, stream, bytearray(), sink, proc.pid)
