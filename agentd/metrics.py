"""Counters and latency histograms with frozen snapshots, and Prometheus text exposition."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass

# Upper bounds in milliseconds: sandbox actions live in 5–500 ms, LLM calls in 0.1–120 s.
BUCKETS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, math.inf,
)


@dataclass(frozen=True)
class HistogramSnapshot:
    count: int
    sum_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    buckets: tuple[tuple[float, int], ...]


class Histogram:
    """Fixed buckets (cheap to update) plus a bounded reservoir of recent values for quantiles."""

    def __init__(self, reservoir: int = 2048) -> None:
        self._counts = [0] * len(BUCKETS_MS)
        self._sum = 0.0
        self._max = 0.0
        self._recent: list[float] = []
        self._cap = reservoir
        self._next = 0

    def observe(self, value_ms: float) -> None:
        self._counts[bisect.bisect_left(BUCKETS_MS, value_ms)] += 1
        self._sum += value_ms
        self._max = max(self._max, value_ms)
        if len(self._recent) < self._cap:
            self._recent.append(value_ms)
        else:
            self._recent[self._next] = value_ms
            self._next = (self._next + 1) % self._cap

    def snapshot(self) -> HistogramSnapshot:
        ordered = sorted(self._recent)

        def q(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(BUCKETS_MS, self._counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return HistogramSnapshot(sum(self._counts), round(self._sum, 3), q(0.5), q(0.95),
                                 q(0.99), self._max, tuple(cumulative))


class Metrics:
    """The daemon's counters (``verified_steps`` …) and histograms (``actor_latency`` …)."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.histograms: dict[str, Histogram] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def observe(self, name: str, value_ms: float) -> None:
        hist = self.histograms.get(name)
        if hist is None:
            hist = self.histograms[name] = Histogram()
        hist.observe(value_ms)

    def snapshot(self) -> dict[str, object]:
        hists = {name: h.snapshot() for name, h in sorted(self.histograms.items())}
        return {
            "counters": dict(sorted(self.counters.items())),
            "histograms": {
                name: {"count": s.count, "p50_ms": round(s.p50_ms, 2), "p95_ms": round(s.p95_ms, 2),
                       "p99_ms": round(s.p99_ms, 2), "max_ms": round(s.max_ms, 2)}
                for name, s in hists.items()
            },
        }

    def prometheus(self, gauges: dict[str, float] | None = None) -> str:
        lines: list[str] = []
        for name, count in sorted(self.counters.items()):
            lines += [f"# TYPE agentd_{name}_total counter", f"agentd_{name}_total {count}"]
        for name, value in sorted((gauges or {}).items()):
            lines += [f"# TYPE agentd_{name} gauge", f"agentd_{name} {value}"]
        for name, hist in sorted(self.histograms.items()):
            s = hist.snapshot()
            lines.append(f"# TYPE agentd_{name}_ms histogram")
            for bound, n in s.buckets:
                le = "+Inf" if math.isinf(bound) else f"{bound:g}"
                lines.append(f'agentd_{name}_ms_bucket{{le="{le}"}} {n}')
            lines += [f"agentd_{name}_ms_sum {s.sum_ms}", f"agentd_{name}_ms_count {s.count}"]
        return "\n".join(lines) + "\n"
