"""Where an engine step's CPU goes: the daemon's own (Python, its threads) and the jailed
processes', and how many jailed runs of each kind a step costs.

Runs the reference policy over ``--tasks`` two-step tasks (rewrite, submit) in a temporary
project, then prints per step: the process's CPU (``RUSAGE_SELF``), its children's
(``RUSAGE_CHILDREN``: bwrap, ast-grep), and the jailed runs from the sandbox's step journal.
Point ``PYTHONPATH`` at another checkout to measure that one the same way (before/after).

Usage: ``.venv/bin/python benchmarks/step_cost.py [--tasks 200]``
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import shutil
import tempfile
from pathlib import Path

import anyio

from agentd.config import load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.testing.tasks import make_task

ROOT = Path(__file__).resolve().parent.parent


def _cpu_ms(who: int) -> float:
    usage = resource.getrusage(who)
    return (usage.ru_utime + usage.ru_stime) * 1000


async def measure(tmp: Path, tasks: int) -> None:
    shutil.copytree(ROOT / "configs", tmp / "configs")
    settings = load_settings(tmp / "configs" / "agentd.yaml")
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [make_task(i) for i in range(tasks)])
    own, children = _cpu_ms(resource.RUSAGE_SELF), _cpu_ms(resource.RUSAGE_CHILDREN)
    summary = await run_foreground(settings, RunOptions("dev", "reference", None, 1, "cost",
                                                        False))
    own, children = _cpu_ms(resource.RUSAGE_SELF) - own, \
        _cpu_ms(resource.RUSAGE_CHILDREN) - children
    steps = summary["steps"]
    runs: collections.Counter[str] = collections.Counter()
    for journal in settings.path(settings.sandbox.log_dir).glob("*.jsonl"):
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("argv"):
                runs[entry["tool"]] += 1
    print(f"{steps} steps at {steps / summary['elapsed_s']:.1f} steps/s")
    print(f"per step: daemon CPU {own / steps:.2f} ms, jailed processes' CPU "
          f"{children / steps:.2f} ms, jailed runs {sum(runs.values()) / steps:.2f} ("
          + ", ".join(f"{tool} {n / steps:.2f}" for tool, n in sorted(runs.items())) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(measure, Path(tmp), args.tasks, backend="asyncio",
                  backend_options={"use_uvloop": True})


if __name__ == "__main__":
    main()
