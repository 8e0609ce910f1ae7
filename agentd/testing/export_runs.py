"""Small real runs for the training-export and viewer tests.

The real engine, bwrap, ast-grep and SQLite:

* ``reference_run``: the reference replay on a few dev tasks (every episode accepted).
* ``actor_run``: the actor policy against a fake vLLM on loopback that fails the episodes
  whose seed is odd and solves the others, so every task's group has rewards that differ; the
  fake returns token ids (vLLM's ``return_token_ids``), which the records keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agentd.config import Settings, load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import make_task, solve

TASKS = 3
EPISODES = 2


def _settings(tmp_project: Path) -> Settings:
    settings = load_settings(tmp_project / "configs" / "agentd.yaml")
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tasks(path, [make_task(i) for i in range(TASKS)])
    return settings


async def reference_run(tmp_project: Path, run_id: str = "ref") -> Path:
    """Shards of a reference run: TASKS tasks × EPISODES episodes, two steps each."""
    summary = await run_foreground(_settings(tmp_project),
                                   RunOptions("dev", "reference", None, EPISODES, run_id, False))
    return Path(summary["trajectories"])


def odd_seeds_fail(body: dict[str, Any]) -> str:
    """Prose (a parse failure) for odd seeds, a solution for even ones."""
    return "I would rather not." if body.get("seed", 0) % 2 else solve(body)


async def actor_run(tmp_project: Path, fake: FakeVLLM, run_id: str = "act") -> Path:
    """Shards of an actor run against ``fake`` (seed 8 + episode: episode 1 fails)."""
    actors = {"actors": [{"name": "fake0", "port": fake.port, "max_concurrent_requests": 4}],
              "client": {"timeout_s": 5, "connect_timeout_s": 1, "max_retries": 0},
              "sampling": {"max_tokens": 256, "seed": 8}}
    (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
    cfg = tmp_project / "configs" / "agentd.yaml"
    cfg.write_text(cfg.read_text().replace("max_steps: 8", "max_steps: 2"))
    fake.reply_with(odd_seeds_fail)
    summary = await run_foreground(_settings(tmp_project),
                                   RunOptions("dev", "actor", None, EPISODES, run_id, False))
    return Path(summary["trajectories"])
