"""``agentd run``: check the arguments, take the state lock, run the engine in the foreground
(``agentd.engine.foreground``), verify the run's trajectory shards and print a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from agentd.cli.data import build_command, fetch_command
from agentd.config import MAX_EPISODES_PER_TASK, Settings, load_settings
from agentd.datasets import tasks_path
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.engine.lock import StateLock
from agentd.engine.preflight import preflight
from agentd.engine.submission import (
    MAX_LIMIT,
    bounded_int,
    known_split,
    new_run_id,
    valid_run_id,
)
from agentd.logging import setup_logging, shutdown_logging


async def ensure_corpus(settings: Settings, config: Path | None, split: str) -> None:
    """Fetch and build the task corpus when the split's tasks are missing (a first run)."""
    if tasks_path(settings, split).exists():
        return
    print(f"agentd run: no tasks for split {split!r} yet; building the corpus first",
          file=sys.stderr)
    ns = argparse.Namespace(config=config, names=[], limit=None)
    for step in (fetch_command, build_command):
        code = await anyio.to_thread.run_sync(step, ns)
        if code != 0:
            raise SystemExit(code)


def _options(args: argparse.Namespace, settings: Settings) -> RunOptions:
    """The run's options, each checked before anything is opened or committed."""
    ep = settings.agentd.episodes
    policy = args.policy or ep.default_policy
    given = {"episodes": args.episodes, "limit": args.limit}
    return RunOptions(
        split=known_split(settings, args.split or ep.default_split), policy=policy,
        limit=bounded_int(given, "limit", None, 1, MAX_LIMIT),
        episodes=bounded_int(given, "episodes", ep.episodes_per_task, 1,
                             MAX_EPISODES_PER_TASK) or 1,
        run_id=valid_run_id(args.run_id or new_run_id(policy)), progress=not args.no_progress)


def _print_summary(summary: dict[str, Any], problems: list[str]) -> None:
    eps = summary["episodes"]
    print(f"run {summary['run_id']}: {summary['tasks']} tasks, {eps['done']} episodes done, "
          f"{eps['dead']} dead, {eps['cancelled']} cancelled")
    print(f"  steps {summary['steps']}, verified {summary['verified_steps']}, final matches "
          f"{summary['final_matches']}, parse failures {summary['parse_failures']}, sandbox "
          f"failures {summary['sandbox_failures']}")
    print(f"  {summary['elapsed_s']} s, {summary['steps_per_s']} steps/s")
    print(f"  trajectories: {summary['trajectories']} "
          f"({'verify clean' if not problems else f'{len(problems)} problem(s)'})")
    for problem in problems[:5]:
        print(f"    {problem}")


def run_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    opts = _options(args, settings)  # every argument checked before anything is opened
    preflight(settings)
    lg = settings.agentd.logging
    setup_logging(settings.path(lg.file), level=lg.level, max_bytes=lg.max_bytes,
                  backups=lg.backups, stderr=False)
    lock = StateLock(settings.path(settings.agentd.paths.lock_file))
    try:
        anyio.run(ensure_corpus, settings, args.config, opts.split)
        lock.acquire()
        summary = anyio.run(run_foreground, settings, opts, backend="asyncio",
                            backend_options={"use_uvloop": True})
    finally:
        lock.release()
        shutdown_logging()
    from agentd.trajectories.verify import verify_paths

    run_dir = Path(summary["trajectories"])
    problems = [str(p) for p in verify_paths([run_dir]).problems] if run_dir.exists() else []
    _print_summary(summary, problems)
    # A resumed run may have nothing left to do: that is success, as long as it has results.
    failed = problems or summary["episodes"]["dead"] or not summary["episodes"]["done"]
    return 1 if failed else 0
