"""The run's index, the paged task and episode listings, and each task's page.

Listings are paged (``page_size`` rows a page) so a run of 10,000 episodes is a hundred small
pages, not one that a browser chokes on. Filters are pages too: every combination of outcome
(all, accepted, failed) and policy has its own paged listing, so filtering works across pages
and with no script; a task's own page filters its rows in place.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agentd.viewer.html import badge, esc, link, page
from agentd.viewer.summary import EpisodeSummary, slug

OUTCOMES = ("all", "accepted", "failed")


@dataclass(frozen=True)
class Listing:
    """One filtered listing: its directory, its label and the episodes it holds."""

    outcome: str
    policy: str  # "" for every policy
    episodes: list[EpisodeSummary]

    @property
    def name(self) -> str:
        return f"{self.outcome}--{slug(self.policy) if self.policy else 'all'}"

    @property
    def href(self) -> str:
        return f"episodes/{self.name}/page-0001.html"


def listings(summaries: Sequence[EpisodeSummary]) -> list[Listing]:
    policies = sorted({s.policy for s in summaries})
    out = []
    for policy in ["", *policies]:
        mine = [s for s in summaries if not policy or s.policy == policy]
        for outcome in OUTCOMES:
            kept = [s for s in mine if outcome == "all" or (s.accepted == (outcome == "accepted"))]
            out.append(Listing(outcome, policy, kept))
    return out


def page_name(n: int) -> str:
    return f"page-{n:04d}.html"


def pager(current: int, total: int) -> str:
    """Links to the first, previous, nearby, next and last pages."""
    if total <= 1:
        return ""
    shown = sorted({1, total, *range(max(1, current - 3), min(total, current + 3) + 1)})
    parts = []
    if current > 1:
        parts.append(link(page_name(current - 1), "‹ previous"))
    for n in shown:
        parts.append(f'<span class="on">{n}</span>' if n == current else link(page_name(n), str(n)))
    if current < total:
        parts.append(link(page_name(current + 1), "next ›"))
    return f"<nav class=pages>page {current} of {total}: {' '.join(parts)}</nav>"


def paged(rows: Sequence[str], size: int) -> Iterator[tuple[int, int, Sequence[str]]]:
    """(page number, page count, rows of the page); one empty page when there are none."""
    total = max(1, math.ceil(len(rows) / size))
    for n in range(1, total + 1):
        yield n, total, rows[(n - 1) * size:n * size]


def episode_row(s: EpisodeSummary, prefix: str) -> str:
    tags = " ".join(s.tags)
    return (f'<tr data-tags="{esc(tags)}"><td>{link(prefix + s.href, f"episode {s.episode}")}'
            f"</td><td>{esc(s.task_id)}</td><td>{esc(s.policy)}</td><td>{esc(s.split)}</td>"
            f"<td>{badge(s.accepted, 'accepted', 'failed')}</td><td class=num>{s.steps}</td>"
            f"<td class=num>{s.verified_steps}</td><td class=num>{s.reward:.3f}</td></tr>")


EPISODE_HEAD = ("<tr><th>episode</th><th>task</th><th>policy</th><th>split</th><th>outcome"
                "</th><th>steps</th><th>verified</th><th>return</th></tr>")


def filter_nav(all_: list[Listing], current: Listing | None, prefix: str) -> str:
    """Links to every other listing: outcome × policy."""
    parts = []
    for lst in all_:
        label = f"{lst.outcome} · {lst.policy or 'every policy'} ({len(lst.episodes)})"
        parts.append(f'<span class="on">{esc(label)}</span>' if lst is current
                     else link(prefix + lst.href, label))
    return f"<nav class=filters>{' '.join(parts)}</nav>"


def listing_pages(all_: list[Listing], lst: Listing, run_id: str,
                  size: int) -> Iterator[tuple[str, str]]:
    """(path, html) of every page of one listing."""
    rows = [episode_row(s, "../../") for s in lst.episodes]
    for n, total, chunk in paged(rows, size):
        crumbs = f"{link('../../index.html', 'run ' + run_id)} › episodes"
        body = (filter_nav(all_, lst, "../../") + pager(n, total)
                + f"<table>{EPISODE_HEAD}{''.join(chunk)}</table>" + pager(n, total))
        yield (f"episodes/{lst.name}/{page_name(n)}",
               page(f"Episodes: {lst.outcome}, {lst.policy or 'every policy'}", crumbs, body))


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    episodes: list[EpisodeSummary]

    @property
    def href(self) -> str:
        return f"task/{slug(self.task_id)}.html"


def task_pages(tasks: list[TaskRow], run_id: str, size: int) -> Iterator[tuple[str, str]]:
    """The paged task listing, then one page per task."""
    rows = []
    for t in tasks:
        accepted = sum(s.accepted for s in t.episodes)
        mean = sum(s.reward for s in t.episodes) / len(t.episodes)
        policies = ", ".join(sorted({s.policy for s in t.episodes}))
        rows.append(f"<tr><td>{link('../' + t.href, t.task_id)}</td>"
                    f"<td>{esc(t.episodes[0].split)}</td><td>{esc(policies)}</td>"
                    f"<td class=num>{len(t.episodes)}</td><td class=num>{accepted}</td>"
                    f"<td class=num>{mean:.3f}</td></tr>")
    head = ("<tr><th>task</th><th>split</th><th>policies</th><th>episodes</th>"
            "<th>accepted</th><th>mean return</th></tr>")
    for n, total, chunk in paged(rows, size):
        crumbs = f"{link('../index.html', 'run ' + run_id)} › tasks"
        body = pager(n, total) + f"<table>{head}{''.join(chunk)}</table>" + pager(n, total)
        yield f"tasks/{page_name(n)}", page(f"Tasks of {run_id}", crumbs, body)
    for t in tasks:
        yield t.href, _task_page(t, run_id)


def _task_page(t: TaskRow, run_id: str) -> str:
    tags = sorted({tag for s in t.episodes for tag in s.tags})
    buttons = " ".join(f'<a href="#" data-filter="{esc(tag)}">{esc(tag)}</a>'
                       for tag in ["all", *tags])
    rows = "".join(episode_row(s, "../") for s in t.episodes)
    crumbs = (f"{link('../index.html', 'run ' + run_id)} › "
              f"{link('../tasks/page-0001.html', 'tasks')} › {esc(t.task_id)}")
    body = f"<nav class=filters>filter: {buttons}</nav><table>{EPISODE_HEAD}{rows}</table>"
    return page(f"Task {t.task_id}", crumbs, body)


def index_page(run_id: str, summaries: Sequence[EpisodeSummary], all_: list[Listing],
               tasks: int, records: int, skipped: int) -> str:
    """The run: its totals, by policy and split, and links into the listings."""
    accepted = sum(s.accepted for s in summaries)
    steps = sum(s.steps for s in summaries)
    verified = sum(s.verified_steps for s in summaries)
    by_policy = Counter(s.policy for s in summaries)
    by_split = Counter(s.split for s in summaries)
    totals = (f"<table><tr><th>tasks</th><th>episodes</th><th>accepted</th><th>failed</th>"
              f"<th>steps</th><th>verified steps</th><th>records</th><th>bad lines</th></tr>"
              f"<tr><td class=num>{tasks}</td><td class=num>{len(summaries)}</td>"
              f"<td class=num>{accepted}</td><td class=num>{len(summaries) - accepted}</td>"
              f"<td class=num>{steps}</td><td class=num>{verified}</td>"
              f"<td class=num>{records}</td><td class=num>{skipped}</td></tr></table>")
    breakdown = "".join(f"<li>{esc(k)}: {v} episodes</li>" for k, v in sorted(by_policy.items()))
    splits = "".join(f"<li>split {esc(k)}: {v} episodes</li>" for k, v in sorted(by_split.items()))
    body = (f"{totals}<p>{link('tasks/page-0001.html', 'Tasks')} · "
            f"{link(all_[0].href, 'All episodes')}</p>"
            f"{filter_nav(all_, None, '')}<ul>{breakdown}{splits}</ul>")
    return page(f"Run {run_id}", "runs › " + esc(run_id), body)
