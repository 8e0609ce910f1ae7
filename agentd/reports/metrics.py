"""Per policy/teacher metrics, streamed from trajectory records.

A *group* is the policy kind plus the endpoint that answered (``teacher/minimax-m2``,
``teacher/glm-4.6``, ``actor/actor0``, ``reference/in-process``), so a teacher's fallback shows
as its own row. Precision is verified writing steps over writing steps: read steps are neutral
and ``submit`` is judged by the episode (``agentd eval`` reports episode success and pass@k).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agentd.records import TrajectoryRecord
from agentd.trajectories import iter_records

_MAX_SAMPLES = 100_000  # latency/reward samples kept per group; bounded memory on huge runs


@dataclass
class GroupMetrics:
    """Totals for one policy/teacher group."""

    name: str
    steps: int = 0
    verified_steps: int = 0
    write_steps: int = 0
    verified_writes: int = 0
    parse_failures: int = 0
    final_matches: int = 0
    episodes_done: int = 0
    reward_sum: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    episodes: set[tuple[str, str, int]] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def add(self, r: TrajectoryRecord) -> None:
        self.steps += 1
        self.verified_steps += r.verified
        # Records from before step kinds were all judged as writes.
        if (r.reward.step_kind or "write") == "write":
            self.write_steps += 1
            self.verified_writes += r.verified
        self.parse_failures += r.parse_error is not None
        self.reward_sum += r.reward.total
        self.episodes.add((r.run_id, r.task_id, r.episode))
        if r.done:
            self.episodes_done += 1
            self.final_matches += r.reward.final_match
        self.prompt_tokens += r.usage.prompt_tokens
        self.completion_tokens += r.usage.completion_tokens
        self.cost_usd += r.usage.cost_usd
        if len(self.latencies_ms) < _MAX_SAMPLES:
            self.latencies_ms.append(r.timing.generate_ms)
            self.rewards.append(r.reward.total)

    @property
    def precision(self) -> float:
        return self.verified_writes / self.write_steps if self.write_steps else 0.0

    @property
    def final_match_rate(self) -> float:
        return self.final_matches / self.episodes_done if self.episodes_done else 0.0

    @property
    def parse_failure_rate(self) -> float:
        return self.parse_failures / self.steps if self.steps else 0.0

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.steps if self.steps else 0.0

    def latency(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[min(98, max(0, int(q * 100) - 1))]


@dataclass
class ReportData:
    """Everything a report needs, gathered in one streaming pass."""

    groups: dict[str, GroupMetrics] = field(default_factory=dict)
    timeline: list[tuple[str, bool]] = field(default_factory=list)  # (created_at, verified)
    bad_lines: int = 0
    runs: set[str] = field(default_factory=set)
    corpora: dict[str, set[str]] = field(default_factory=dict)  # run -> corpus versions seen

    @property
    def total_steps(self) -> int:
        return sum(g.steps for g in self.groups.values())

    @property
    def total_verified(self) -> int:
        return sum(g.verified_steps for g in self.groups.values())


def group_name(r: TrajectoryRecord) -> str:
    return f"{r.policy.kind}/{r.policy.endpoint or r.policy.model}"


def collect(paths: Iterable[Path], run_id: str | None = None) -> ReportData:
    data = ReportData()
    for _path, _line, item in iter_records(paths):
        if isinstance(item, Exception):
            data.bad_lines += 1
            continue
        if run_id is not None and item.run_id != run_id:
            continue
        name = group_name(item)
        data.groups.setdefault(name, GroupMetrics(name)).add(item)
        data.runs.add(item.run_id)
        data.corpora.setdefault(item.run_id, set()).add(item.provenance.corpus_version)
        if len(data.timeline) < _MAX_SAMPLES:
            data.timeline.append((item.created_at, item.verified))
    return data
