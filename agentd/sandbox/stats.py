"""Frozen snapshots of what the sandbox did (for ``agentd ctl status``) and of the doctor."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from agentd.records import SandboxResult


@dataclass(frozen=True)
class SandboxStatistics:
    """Counters since the ``Sandbox`` was created."""

    runs: int
    in_flight: int
    concurrency: int
    failures: dict[str, int]
    timeouts: int
    killed: int
    total_ms: float
    running: int = 0  # jailed processes alive now (inside the concurrency limiter)
    peak_running: int = 0  # the most that were ever alive at once

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.runs if self.runs else 0.0


class JailReport(msgspec.Struct, frozen=True):
    """Whether the configured jail works on this host, and why not."""

    works: bool
    jailer: str
    detail: str = ""
    ast_grep_version: str = ""
    uid: int | None = None
    seccomp: bool = False
    cgroup: str = ""  # the per-action cgroup backend: v2, v1 or none
    cgroup_limits: dict[str, str] = msgspec.field(default_factory=dict)
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def reason(self) -> str:
        return self.detail


@dataclass
class Counters:
    """The mutable side of ``SandboxStatistics``."""

    runs: int = 0
    in_flight: int = 0
    running: int = 0
    peak_running: int = 0
    timeouts: int = 0
    killed: int = 0
    total_ms: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)

    def record(self, result: SandboxResult) -> None:
        self.runs += 1
        self.total_ms += result.duration_ms
        self.timeouts += result.timed_out
        self.killed += result.killed_reason is not None
        if result.error_kind != "none":
            self.failures[result.error_kind] += 1

    def snapshot(self, concurrency: int) -> SandboxStatistics:
        return SandboxStatistics(
            runs=self.runs, in_flight=self.in_flight, concurrency=concurrency,
            failures=dict(sorted(self.failures.items())), timeouts=self.timeouts,
            killed=self.killed, total_ms=round(self.total_ms, 3), running=self.running,
            peak_running=self.peak_running,
        )

    def started(self) -> None:
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)

    def ended(self) -> None:
        self.running -= 1
