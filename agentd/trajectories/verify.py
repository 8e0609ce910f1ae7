"""``agentd trajectories verify``: prove the exactly-once contract held on disk.

Checks, streaming over every line of every file:

* **torn line** — a last line without ``\\n`` (a crash mid-write the writer has not repaired);
* **schema** — a complete line that is not JSON, not a ``TrajectoryRecord``, or a newer
  ``schema_version``;
* **duplicate** — a ``(run_id, task_id, episode, step)`` seen twice;
* **gap** — step ``k`` present while some step in ``0..k-1`` of the same episode is not.

Memory grows with the number of episodes (a set of small step numbers each), not with the
size of the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agentd.records import TrajectoryRecord
from agentd.trajectories.reader import SchemaError, TornLineError, iter_records

MAX_PROBLEMS = 20

Episode = tuple[str, str, int]


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located as ``file:line``."""

    kind: str  # torn_line | schema | duplicate | gap
    path: Path
    line: int
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.detail}"


@dataclass
class VerifyReport:
    """Totals and the first ``MAX_PROBLEMS`` problems."""

    files: int = 0
    lines: int = 0
    records: int = 0
    episodes: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.counts

    def add(self, problem: Problem) -> None:
        self.counts[problem.kind] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        kinds = ("duplicate", "gap", "schema", "torn_line")
        tally = ", ".join(f"{self.counts[k]} {k}" for k in kinds)
        verdict = "OK" if self.ok else "FAILED"
        return (f"{verdict}: {self.files} files, {self.lines} lines, {self.records} records, "
                f"{self.episodes} episodes; {tally}")


@dataclass
class _Episode:
    steps: set[int] = field(default_factory=set)
    first: tuple[Path, int] = (Path(), 0)


class Verifier:
    """Feed it records one at a time, then ``finish()`` for the gap check."""

    def __init__(self) -> None:
        self.report = VerifyReport()
        self._episodes: dict[Episode, _Episode] = {}
        self._last_path: Path | None = None

    def feed(self, path: Path, line: int, item: TrajectoryRecord | Exception) -> None:
        if path != self._last_path:
            self.report.files += 1
            self._last_path = path
        self.report.lines += 1
        if isinstance(item, TornLineError):
            self.report.add(Problem("torn_line", path, line, str(item)))
        elif isinstance(item, Exception):
            kind = "schema" if isinstance(item, SchemaError) else "error"
            self.report.add(Problem(kind, path, line, str(item)))
        else:
            self._record(path, line, item)

    def _record(self, path: Path, line: int, record: TrajectoryRecord) -> None:
        self.report.records += 1
        ekey = (record.run_id, record.task_id, record.episode)
        episode = self._episodes.get(ekey)
        if episode is None:
            episode = self._episodes[ekey] = _Episode(first=(path, line))
        if record.step in episode.steps:
            self.report.add(Problem("duplicate", path, line, f"{_name(ekey)} step {record.step}"))
            return
        if record.step < 0:
            self.report.add(Problem("schema", path, line, f"negative step {record.step}"))
            return
        episode.steps.add(record.step)

    def finish(self) -> VerifyReport:
        """Run the gap check over every episode and return the report."""
        self.report.episodes = len(self._episodes)
        for ekey, episode in self._episodes.items():
            count, first = _missing(episode.steps)
            if count:
                path, line = episode.first
                shown = ", ".join(str(s) for s in first)
                more = f" (+{count - len(first)} more)" if count > len(first) else ""
                self.report.add(Problem("gap", path, line,
                                        f"{_name(ekey)} is missing step(s) {shown}{more}"))
        return self.report


def _missing(steps: set[int], show: int = 10) -> tuple[int, list[int]]:
    """How many of ``0..max`` are absent, and the first few (bounded even for step 10**9)."""
    top = max(steps, default=-1)
    count = top + 1 - len(steps)
    first: list[int] = []
    k = 0
    while count and len(first) < min(show, count):
        if k not in steps:
            first.append(k)
        k += 1
    return count, first


def _name(ekey: Episode) -> str:
    return f"run {ekey[0]} task {ekey[1]} episode {ekey[2]}"


def verify_paths(paths: Iterable[Path]) -> VerifyReport:
    """Check every ``*.jsonl`` under ``paths``."""
    verifier = Verifier()
    for path, line, item in iter_records(paths):
        verifier.feed(path, line, item)
    return verifier.finish()
