"""Whole runs for tests and benchmarks: point a project's configs at fake servers and run.

``configure`` rewrites a (temporary) project's ``configs/`` so teachers or actors are the fakes;
``dev_tasks`` reads the project's real dev split (building the corpus with the project's own
``agentd data fetch/build`` when missing); ``run`` is ``agentd run`` in-process.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import yaml

from agentd.config import PACKAGE_ROOT, Settings, load_settings
from agentd.datasets import load_tasks, write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.records import Task, TrajectoryRecord
from agentd.trajectories import iter_records


def configure(project: Path, *, teacher: dict[str, Any] | None = None,
              actors: list[dict[str, Any]] | None = None, profiles: dict[str, Any] | None = None,
              budget: dict[str, Any] | None = None, client: dict[str, Any] | None = None,
              actor_max_tokens: int | None = None) -> Settings:
    """Point ``project``'s configs at the fakes and load its settings."""
    path = project / "configs" / "vllm_actors.yaml"
    doc = yaml.safe_load(path.read_text())
    if teacher is not None:
        doc["teachers"]["primary"].update(teacher)
        doc["teachers"]["fallback"] = None
        doc["teachers"]["sampling"]["max_tokens"] = 512
    if actors is not None:
        doc["actors"] = actors
    if actor_max_tokens is not None:
        doc["sampling"]["max_tokens"] = actor_max_tokens
    doc["profiles"].update(profiles or {})
    doc["client"].update({"backoff_base_s": 0.01, "backoff_max_s": 0.05, **(client or {})})
    path.write_text(yaml.safe_dump(doc))
    main = project / "configs" / "agentd.yaml"
    if budget is not None:
        mdoc = yaml.safe_load(main.read_text()) or {}
        mdoc["budget"] = budget
        main.write_text(yaml.safe_dump(mdoc))
    return load_settings(main)


def dev_tasks(n: int, root: Path = PACKAGE_ROOT) -> list[Task]:
    """The first ``n`` tasks of the project's real dev split (built if missing)."""
    path = root / "data" / "processed" / "dev" / "tasks.jsonl"
    if not path.exists():
        from agentd.cli import main

        config = str(root / "configs" / "agentd.yaml")
        if main(["data", "fetch", "--config", config]) or main(["data", "build",
                                                                "--config", config]):
            raise RuntimeError("agentd data fetch/build failed")
    return list(itertools.islice(load_tasks(path), n))


def write_split(settings: Settings, tasks: list[Task], split: str = "dev") -> None:
    path = settings.path(settings.agentd.paths.processed_data) / split / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, tasks)


def records(summary: dict[str, Any]) -> list[TrajectoryRecord]:
    """Every record of a run's shards (a torn or invalid one raises)."""
    out: list[TrajectoryRecord] = []
    for _, _, record in iter_records([Path(summary["trajectories"])]):
        if isinstance(record, Exception):
            raise record
        out.append(record)
    return out


def run(settings: Settings, run_id: str, policy: str = "teacher",
        limit: int | None = None) -> dict[str, Any]:
    """``agentd run`` in this process; returns its summary."""
    opts = RunOptions(split="dev", policy=policy, limit=limit, episodes=1, run_id=run_id,
                      progress=False)
    result: dict[str, Any] = anyio.run(run_foreground, settings, opts)
    return result
