"""Handlers of ``agentd data fetch|build|stats|verify`` (wired in ``agentd.cli``).

Errors travel as exceptions: ``ConfigError``/``UsageError`` end as one line and exit 2,
``DatasetError``/``UnsafeSourceError`` as one line and exit 1 (see ``agentd.cli.main``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import msgspec

from agentd.config import Settings, load_settings
from agentd.datasets.build import build_tasks, stats_document, write_build
from agentd.datasets.catalog import is_fetched, processed_dir, select
from agentd.datasets.dirhash import write_json_atomic
from agentd.datasets.fetch import fetch_entry
from agentd.datasets.integrity import check_raw, reverify_sample
from agentd.datasets.splits import SPLITS
from agentd.datasets.stats import render
from agentd.datasets.store import STATS_FILE, load_tasks, tasks_path


def _names(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "names", None) or [])


async def _fetch(settings: Settings, names: list[str]) -> int:
    for entry in select(settings, names or None):
        if not names and is_fetched(settings, entry.name):
            print(f"{entry.name}: already fetched (name it to fetch again)", file=sys.stderr)
            continue
        meta = await fetch_entry(settings, entry)
        print(f"{meta.name}: {meta.files} files, {meta.total_bytes} bytes, "
              f"dir_hash {meta.dir_hash[:16]}", file=sys.stderr)
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    """Fetch the named (default: enabled) datasets into ``data/raw``."""
    settings = load_settings(args.config)
    return anyio.run(_fetch, settings, _names(args))


def build_command(args: argparse.Namespace) -> int:
    """Build verified tasks into ``data/processed/<split>/tasks.jsonl`` + ``stats.json``."""
    settings = load_settings(args.config)
    result = anyio.run(lambda: build_tasks(settings, _names(args) or None,
                                           limit=getattr(args, "limit", None)))
    doc = write_build(settings, result)
    print(render(doc))
    return 0 if any(result.splits.values()) else 1


def _read_splits(settings: Settings) -> dict[str, Any]:
    return {s: list(load_tasks(tasks_path(settings, s))) for s in SPLITS
            if tasks_path(settings, s).exists()}


def stats_command(args: argparse.Namespace) -> int:
    """Print and write per-split counts (keeping the drop reasons of the last build)."""
    settings = load_settings(args.config)
    splits = _read_splits(settings)
    if not splits:
        print(f"agentd: no tasks under {processed_dir(settings)} (run `agentd data build`)",
              file=sys.stderr)
        return 1
    path = processed_dir(settings) / STATS_FILE
    old = _previous(path)
    keep = {k: v for k, v in old.items() if k not in ("splits", "drops")}
    doc = stats_document(splits, Counter(old.get("drops") or {}), keep)
    write_json_atomic(path, doc)
    print(render(doc))
    return 0


def _previous(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = msgspec.json.decode(path.read_bytes())
    except (FileNotFoundError, msgspec.DecodeError):
        return {}
    return doc


def verify_command(args: argparse.Namespace) -> int:
    """Re-check raw data hashes and re-verify a sample of tasks per split in the sandbox."""
    settings = load_settings(args.config)
    problems = check_raw(settings, _names(args) or None)
    bad = anyio.run(lambda: reverify_sample(settings, getattr(args, "sample", 50)))
    for line in problems + bad:
        print(line)
    print(f"verify: {len(problems)} raw problem(s), {len(bad)} task problem(s)",
          file=sys.stderr)
    return 1 if problems or bad else 0
