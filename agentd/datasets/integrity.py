"""``agentd data verify``: raw data still matches its metadata; built tasks still verify."""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from pathlib import Path

from agentd.config import Settings
from agentd.datasets.catalog import dataset_dir, is_fetched, select, tree_dir
from agentd.datasets.dirhash import dir_hash, read_metadata
from agentd.datasets.splits import SPLITS
from agentd.datasets.store import load_tasks, tasks_path
from agentd.datasets.verify import verify_all
from agentd.records import Task
from agentd.sandbox import Sandbox


def check_raw(settings: Settings, names: list[str] | None) -> list[str]:
    """One line per fetched dataset whose tree no longer hashes to its metadata."""
    problems: list[str] = []
    for entry in select(settings, names, include_fetched=True):
        if not is_fetched(settings, entry.name):
            problems.append(f"{entry.name}: not fetched")
            continue
        meta = read_metadata(dataset_dir(settings, entry.name))
        digest, files, _total = dir_hash(tree_dir(settings, entry.name))
        if digest != meta.dir_hash:
            problems.append(f"{entry.name}: dir hash {digest[:16]} != recorded "
                            f"{meta.dir_hash[:16]} ({files} files now, {meta.files} recorded)")
        elif entry.kind != "local_tree" and meta.sha256 != getattr(entry, "sha256", None):
            problems.append(f"{entry.name}: fetched sha256 differs from the catalog's pin")
    return problems


def choose(tasks: list[Task], sample: int, rng: random.Random) -> list[Task]:
    """Up to ``sample`` tasks, plus up to ``sample`` of those with tests: a split where few
    tasks carry a ``test_spec`` still has its tests re-run."""
    chosen = rng.sample(tasks, min(sample, len(tasks)))
    seen = {t.task_id for t in chosen}
    tested = [t for t in tasks if t.test_spec is not None and t.task_id not in seen]
    extra = max(0, sample - sum(t.test_spec is not None for t in chosen))
    return chosen + rng.sample(tested, min(extra, len(tested)))


async def reverify_sample(settings: Settings, sample: int) -> list[str]:
    """Re-run the reference actions of up to ``sample`` tasks per split in the sandbox, and
    the tests of up to ``sample`` tasks per split that have them (``choose``)."""
    rng = random.Random(settings.datasets.build.seed)
    lines: list[str] = []
    workspaces = settings.path(settings.agentd.paths.workspaces)
    workspaces.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agentd-verify-logs-") as logs:
        sandbox = Sandbox(settings.sandbox, workspaces_dir=workspaces, log_dir=Path(logs))
        for split in SPLITS:
            path = tasks_path(settings, split)
            if not path.exists():
                continue
            tasks = list(load_tasks(path))
            chosen = choose(tasks, sample, rng)
            drops: Counter[str] = Counter()
            kept = await verify_all(sandbox, chosen, runs=1, concurrency=4, drops=drops,
                                    label=f"verify {split}")
            ok = {t.task_id for t in kept}
            lines += [f"{split}: task {t.task_id} no longer verifies" for t in chosen
                      if t.task_id not in ok]
    return lines
