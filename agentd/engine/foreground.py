"""The engine in the foreground, until one run's work is done (``agentd run``, the tests, the
benchmarks).

``run_foreground`` submits the split to a run of its own, shows a live progress line (a bar on a
terminal, a line every 5 s otherwise), drains and returns a summary. Ctrl-C drains like SIGTERM
does for the daemon; the run can be resumed under its run id.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import anyio

from agentd.config import Settings
from agentd.engine.engine import Engine
from agentd.engine.submission import parse_submit
from agentd.logging import get_logger
from agentd.progress import Progress

log = get_logger(__name__)
PROGRESS_EVERY_S = 0.25  # how often a running `agentd run` reads the queue


@dataclass(frozen=True)
class RunOptions:
    split: str
    policy: str
    limit: int | None
    episodes: int
    run_id: str
    progress: bool


def _detail(counts: dict[str, int], c: Counter[str], elapsed: float) -> str:
    return (f"{c['steps']} steps, {c['verified_steps']} verified | "
            f"{c['steps'] / max(elapsed, 1e-6):.1f} steps/s | {counts['dead']} dead, "
            f"{c['episodes_queued'] + c['episodes_dead']} errors")


async def _wait_for_run(engine: Engine, opts: RunOptions, total: int) -> dict[str, int]:
    assert engine.queue is not None
    progress = Progress("episodes", total=total, enabled=opts.progress, plain_interval_s=5.0)
    started = time.monotonic()
    checked = -PROGRESS_EVERY_S
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, signals, tg.cancel_scope)
            while True:
                # The queue is asked when no episode is left in flight (the run may be over)
                # or every PROGRESS_EVERY_S, not at every episode's end: a query per episode
                # would cost the running steps a database trip each.
                now = time.monotonic()
                if engine.episodes_in_flight and now - checked < PROGRESS_EVERY_S:
                    await engine.episode_ended(PROGRESS_EVERY_S - (now - checked))
                    continue
                checked = now
                counts = await engine.queue.counts(opts.run_id)
                ended = counts["done"] + counts["dead"] + counts["cancelled"] + counts["failed"]
                progress.update(ended, detail=_detail(counts, engine.metrics.counters,
                                                      time.monotonic() - started))
                if counts["queued"] + counts["leased"] == 0:
                    tg.cancel_scope.cancel()
                    break
                if engine.pause_reason and counts["leased"] == 0:  # a budget cap: stop here
                    print(f"\nagentd run: {engine.pause_reason}", file=sys.stderr)
                    tg.cancel_scope.cancel()
                    break
                # Woken by an episode's end (the last one ends the run at once), or after a
                # while for the progress line and the budget check.
                await engine.episode_ended(PROGRESS_EVERY_S)
    progress.close()
    return await engine.queue.counts(opts.run_id)


async def _stop_on_signal(signals: Any, scope: anyio.CancelScope) -> None:
    async for _ in signals:
        print("\nagentd run: interrupted; finishing the steps in flight", file=sys.stderr)
        scope.cancel()
        return


async def run_foreground(settings: Settings, opts: RunOptions) -> dict[str, Any]:
    engine = Engine(settings, only_run=opts.run_id)
    try:
        await engine.open()  # inside: a failure here still closes what it opened
        # Submitting first lets a bad policy or split fail before any task starts.
        request = await anyio.to_thread.run_sync(parse_submit, settings, {
            "split": opts.split, "policy": opts.policy, "limit": opts.limit,
            "episodes": opts.episodes, "run_id": opts.run_id})
        submitted = await engine.submit(request)
        async with anyio.create_task_group() as tg:
            await engine.start(tg)
            started = time.monotonic()
            total = max(submitted.tasks * opts.episodes, 1)
            counts = await _wait_for_run(engine, opts, total)
            await engine.drain(settings.agentd.daemon.drain_timeout_s)
            elapsed = time.monotonic() - started
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await engine.close()
    c = engine.metrics.counters
    return {"run_id": opts.run_id, "policy": opts.policy, "split": opts.split,
            "tasks": submitted.tasks, "episodes": counts, "steps": c["steps"],
            "verified_steps": c["verified_steps"], "final_matches": c["final_matches"],
            "parse_failures": c["parse_failures"], "sandbox_failures": c["sandbox_failures"],
            "elapsed_s": round(elapsed, 1),
            "steps_per_s": round(c["steps"] / max(elapsed, 1e-6), 2),
            "trajectories": str(settings.path(settings.agentd.paths.trajectories) / opts.run_id)}
