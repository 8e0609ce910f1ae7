"""``agentd data build``: corpus → candidates → sandbox verification → tests → splits → files.

Outputs ``data/processed/<split>/tasks.jsonl`` and ``data/processed/stats.json``; each is
written atomically, so a crashed build leaves the previous files intact.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec

from agentd.config import DatasetEntry, LocalTreeDataset, PypiSdistDataset, Settings
from agentd.datasets.astgrep import scan_rule_hits
from agentd.datasets.catalog import is_fetched, processed_dir, select, tree_dir
from agentd.datasets.corpus import SourceFile, load_corpus
from agentd.datasets.dirhash import write_json_atomic
from agentd.datasets.fetch import fetch_entry
from agentd.datasets.recipes import SGCONFIG, load_recipes
from agentd.datasets.splits import SPLITS, assign_splits
from agentd.datasets.stats import split_stats
from agentd.datasets.stdtests import Suite
from agentd.datasets.store import STATS_FILE, corpus_version, write_tasks
from agentd.datasets.taskgen import Candidate, TaskGenerator, rename_candidates, stable_hash
from agentd.datasets.testspecs import attach_specs
from agentd.datasets.verify import verify_all
from agentd.errors import DatasetError
from agentd.logging import get_logger
from agentd.records import AstGrepRule, Task
from agentd.sandbox import Sandbox

log = get_logger(__name__)


@dataclass
class BuildResult:
    """What one build produced."""

    splits: dict[str, list[Task]]
    drops: Counter[str]
    candidates: int
    seconds: float
    tests: dict[str, Any] | None = None  # what attaching test specs did (None: not tried)


def _workers(settings: Settings) -> int:
    return settings.datasets.build.workers or os.cpu_count() or 1


async def _ensure_fetched(settings: Settings, entry: DatasetEntry) -> None:
    if is_fetched(settings, entry.name):
        return
    if isinstance(entry, LocalTreeDataset):  # offline and fast: fetch on the fly
        await fetch_entry(settings, entry)
        return
    raise DatasetError(f"dataset {entry.name!r} is not fetched: run `agentd data fetch "
                       f"{entry.name}`")


async def _dataset_candidates(settings: Settings, entry: DatasetEntry,
                              drops: Counter[str]) -> list[Candidate]:
    build = settings.datasets.build
    tree = tree_dir(settings, entry.name)
    single = isinstance(entry, PypiSdistDataset)
    corpus: list[SourceFile] = await anyio.to_thread.run_sync(
        lambda: load_corpus(entry.name, tree, build, single_package=single))
    hits = await scan_rule_hits(SGCONFIG, tree, timeout_s=build.tool_timeout_s)
    gen = TaskGenerator(corpus=corpus, hits=hits, recipes=load_recipes(),
                        license_=entry.license, build=build, workers=_workers(settings),
                        timeout_s=build.tool_timeout_s)
    found = await gen.singles()
    found += await gen.multi_steps()
    found += await rename_candidates(gen, corpus)
    drops.update(gen.drops)
    log.info("data.candidates", dataset=entry.name, files=len(corpus), candidates=len(found))
    return found


def dedupe(cands: list[Candidate], drops: Counter[str]) -> list[Candidate]:
    """One candidate per (before-state, recipe) content hash, in task-id order."""
    seen: set[str] = set()
    out: list[Candidate] = []
    for c in sorted(cands, key=lambda c: c.task.task_id):
        files = sorted(c.task.files.items())
        rules = [a.rule_yaml for a in c.task.reference_actions if isinstance(a, AstGrepRule)]
        key = stable_hash(*rules, *(f"{p}\0{t}" for p, t in files))
        if key in seen:
            drops["duplicate"] += 1
            continue
        seen.add(key)
        out.append(c)
    return out


def _split(cands: list[Candidate], kept: list[Task], settings: Settings,
           ) -> dict[str, list[Task]]:
    group_of = {c.task.task_id: c.group for c in cands}
    sizes = Counter(group_of[t.task_id] for t in kept)
    build = settings.datasets.build
    assignment = assign_splits(dict(sizes), build.split_ratios, build.seed)
    out: dict[str, list[Task]] = {s: [] for s in SPLITS}
    for t in kept:
        split = assignment[group_of[t.task_id]]
        out[split].append(msgspec.structs.replace(t, split=split))
    return out


def _sandbox(settings: Settings, logs: Path) -> Sandbox:
    workspaces = settings.path(settings.agentd.paths.workspaces)
    workspaces.mkdir(parents=True, exist_ok=True)
    return Sandbox(settings.sandbox, workspaces_dir=workspaces, log_dir=logs)


async def _verify(settings: Settings, tasks: list[Task], drops: Counter[str],
                  ) -> tuple[list[Task], dict[str, Any] | None]:
    """The tasks whose reference reproduces gold, with test specs attached where found."""
    with tempfile.TemporaryDirectory(prefix="agentd-verify-logs-") as logs:
        sandbox = _sandbox(settings, Path(logs))
        kept = await verify_all(sandbox, tasks, runs=settings.datasets.build.verify_runs,
                                concurrency=2 * _workers(settings), drops=drops)
        return await _attach_tests(settings, sandbox, kept)


async def _attach_tests(settings: Settings, sandbox: Sandbox, tasks: list[Task],
                        ) -> tuple[list[Task], dict[str, Any] | None]:
    cfg = settings.datasets.build.tests
    by_name = {e.name: e for e in settings.datasets.datasets}
    suite_entry = by_name.get(cfg.suite)
    if not cfg.enabled or suite_entry is None or not any(
            t.meta.dataset == cfg.dataset for t in tasks):
        return tasks, None
    if not is_fetched(settings, cfg.suite) and not isinstance(suite_entry, LocalTreeDataset):
        log.warning("data.tests_skipped", suite=cfg.suite, reason="not fetched")
        return tasks, None  # tests are an extra: a missing archive must not fail the build
    await _ensure_fetched(settings, suite_entry)
    suite = Suite(tree_dir(settings, cfg.suite), timeout_s=cfg.timeout_s,
                  max_support_bytes=cfg.max_support_bytes)
    # A task's before-state holds its source file as it is in the library.
    sources = {t.meta.source_path: t.files[t.meta.source_path] for t in tasks
               if t.meta.dataset == cfg.dataset and t.meta.source_path in t.files}
    started = time.monotonic()
    out, report = await attach_specs(sandbox, suite, cfg, tasks, sources,
                                     concurrency=2 * _workers(settings))
    doc = report.document()
    doc["seconds"] = round(time.monotonic() - started, 1)
    log.info("data.tests", **doc)
    return out, doc


async def build_tasks(settings: Settings, names: list[str] | None = None, *,
                      limit: int | None = None) -> BuildResult:
    """Build, verify and split the tasks of the selected datasets (does not write)."""
    started = time.monotonic()
    entries = select(settings, names, include_fetched=True)
    if not entries:
        raise DatasetError("no datasets selected: enable one in configs/datasets.yaml")
    drops: Counter[str] = Counter()
    cands: list[Candidate] = []
    for entry in entries:
        await _ensure_fetched(settings, entry)
        cands += await _dataset_candidates(settings, entry, drops)
    cands = dedupe(cands, drops)
    if limit is not None:
        cands = cands[:limit]
    kept, tests = await _verify(settings, [c.task for c in cands], drops)
    splits = _split(cands, kept, settings)
    return BuildResult(splits, drops, len(cands), time.monotonic() - started, tests)


def stats_document(splits: dict[str, list[Task]], drops: Counter[str],
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"splits": {s: split_stats(ts) for s, ts in splits.items()},
                           "drops": dict(sorted(drops.items()))}
    doc.update(extra or {})
    return doc


def write_build(settings: Settings, result: BuildResult) -> dict[str, Any]:
    """Write every split file and ``stats.json``; returns the stats document."""
    out = processed_dir(settings)
    for split, tasks in result.splits.items():
        write_tasks(out / split / "tasks.jsonl", tasks)
    doc = stats_document(result.splits, result.drops, {
        "candidates": result.candidates, "build_seconds": round(result.seconds, 1),
        "seed": settings.datasets.build.seed, "corpus_version": corpus_version(out),
        **({"tests": result.tests} if result.tests is not None else {}),
    })
    write_json_atomic(out / STATS_FILE, doc)
    return doc
