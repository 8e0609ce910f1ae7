"""Build a run's site: stream the shards once, write each episode's page as soon as the
episode is whole, then the listings from the small summaries.

The site is built in a temporary sibling directory and swapped in at the end, so a reader
never sees half a site. An existing ``--out`` is replaced only if it is a site this module
wrote (it holds the ``.agentd-view`` marker): a mistyped ``--out`` can never delete a directory
of something else.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentd.errors import UsageError
from agentd.exports.export import ExportResult, Filter, kept_steps
from agentd.exports.extras import Step, group_by_episode
from agentd.records import TrajectoryRecord
from agentd.viewer.episode import episode_page
from agentd.viewer.listing import TaskRow, index_page, listing_pages, listings, task_pages
from agentd.viewer.summary import EpisodeSummary, summarise

MARKER = ".agentd-view"


@dataclass(frozen=True)
class SiteResult:
    """What a build wrote."""

    out: Path
    episodes: int
    tasks: int
    records: int
    skipped_lines: int
    pages: int


def _record_of(step: Step) -> TrajectoryRecord:
    return step.record


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _episodes(paths: Iterable[Path], root: Path, read: ExportResult) -> list[EpisodeSummary]:
    summaries = []
    steps_in = kept_steps(paths, Filter(), read)
    for number, steps in enumerate(group_by_episode(steps_in, _record_of), start=1):
        summary = summarise(number, steps)
        _write(root, summary.href, episode_page(summary, steps))
        summaries.append(summary)
    return summaries


def _tasks(summaries: list[EpisodeSummary]) -> list[TaskRow]:
    by_task: dict[str, list[EpisodeSummary]] = {}
    for s in sorted(summaries, key=lambda s: (s.task_id, s.run_id, s.episode)):
        by_task.setdefault(s.task_id, []).append(s)
    return [TaskRow(task_id, eps) for task_id, eps in by_task.items()]


def _build(paths: list[Path], root: Path, run_id: str, page_size: int) -> SiteResult:
    read = ExportResult()
    summaries = _episodes(paths, root, read)
    ordered = sorted(summaries, key=lambda s: (s.task_id, s.run_id, s.episode))
    all_ = listings(ordered)
    tasks = _tasks(summaries)
    pages = len(summaries)
    for lst in all_:
        for rel, text in listing_pages(all_, lst, run_id, page_size):
            _write(root, rel, text)
            pages += 1
    for rel, text in task_pages(tasks, run_id, page_size):
        _write(root, rel, text)
        pages += 1
    _write(root, "index.html", index_page(run_id, ordered, all_, len(tasks), read.read,
                                          read.skipped_lines))
    (root / MARKER).write_text(f"{run_id}\n")
    return SiteResult(root, len(summaries), len(tasks), read.read, read.skipped_lines, pages + 1)


def build_site(paths: list[Path], out: Path, run_id: str, *, page_size: int = 100) -> SiteResult:
    """Write the site of the records under ``paths`` to ``out`` (replaced whole)."""
    if page_size < 1:
        raise UsageError("--page-size must be at least 1")
    if out.exists() and not (out / MARKER).is_file():
        raise UsageError(f"{out} exists and is not a viewer site: choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        result = _build(paths, tmp, run_id, page_size)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the site from a web server's user
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SiteResult(out, result.episodes, result.tasks, result.records,
                      result.skipped_lines, result.pages)
