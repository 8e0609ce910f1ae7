"""``agentd trajectories stats``: counts per run, per policy (kind/model) and per split.

A step is *verified* when its record says so (the sandbox ran the action and the engine
checked it); a *parse failure* is a step whose model output did not parse; a *final match*
is an episode's ``done`` step whose workspace equals the gold. Every count comes from the
record's own fields (``verified`` is set by the engine with ``episode.reward.is_verified``),
so these numbers and ``agentd report`` agree as long as both read the same files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agentd.records import TrajectoryRecord
from agentd.trajectories.reader import iter_records

DIMENSIONS = ("run", "policy", "split")


@dataclass
class Bucket:
    """Totals for one run, one policy or one split."""

    steps: int = 0
    verified_steps: int = 0
    final_matches: int = 0
    parse_failures: int = 0
    reward_sum: float = 0.0
    episodes: set[tuple[str, str, int]] = field(default_factory=set)

    def add(self, record: TrajectoryRecord) -> None:
        self.steps += 1
        self.verified_steps += record.verified
        self.final_matches += record.done and record.reward.final_match
        self.parse_failures += record.parse_error is not None or not record.reward.format_ok
        self.reward_sum += record.reward.total
        self.episodes.add((record.run_id, record.task_id, record.episode))

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.steps if self.steps else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"steps": self.steps, "episodes": len(self.episodes),
                "verified_steps": self.verified_steps, "final_matches": self.final_matches,
                "parse_failures": self.parse_failures, "mean_reward": round(self.mean_reward, 4)}


@dataclass
class TrajectoryStats:
    """Buckets by dimension, plus the lines that were not records."""

    total: Bucket = field(default_factory=Bucket)
    by: dict[str, dict[str, Bucket]] = field(
        default_factory=lambda: {d: {} for d in DIMENSIONS})
    bad_lines: int = 0

    def add(self, record: TrajectoryRecord) -> None:
        self.total.add(record)
        labels = {"run": record.run_id,
                  "policy": f"{record.policy.kind}/{record.policy.model}",
                  "split": record.split or "-"}
        for dim, label in labels.items():
            self.by[dim].setdefault(label, Bucket()).add(record)


def collect_stats(paths: Iterable[Path]) -> TrajectoryStats:
    """Stream every record under ``paths`` into buckets."""
    stats = TrajectoryStats()
    for _, _, item in iter_records(paths):
        if isinstance(item, TrajectoryRecord):
            stats.add(item)
        else:
            stats.bad_lines += 1
    return stats


_COLUMNS = ("steps", "episodes", "verified_steps", "final_matches", "parse_failures",
            "mean_reward")
_HEADERS = ("steps", "episodes", "verified", "final", "parse_fail", "mean_reward")


def format_stats(stats: TrajectoryStats) -> str:
    """A plain-text table per dimension, then the total."""
    out: list[str] = []
    for dim in DIMENSIONS:
        rows = sorted(stats.by[dim].items())
        width = max([len(dim), *(len(label) for label, _ in rows)])
        out.append(f"{dim:<{width}}  " + "  ".join(f"{h:>11}" for h in _HEADERS))
        out.extend(_row(label, bucket, width) for label, bucket in rows)
        out.append("")
    out.append(_row("total", stats.total, len("total")))
    if stats.bad_lines:
        out.append(f"({stats.bad_lines} lines were not valid records: run "
                   "`agentd trajectories verify`)")
    return "\n".join(out)


def _row(label: str, bucket: Bucket, width: int) -> str:
    values = bucket.as_dict()
    return f"{label:<{width}}  " + "  ".join(f"{values[c]:>11}" for c in _COLUMNS)
