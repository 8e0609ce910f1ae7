"""The engine against its parts, measured side by side in one run.

1. steps/s of the full engine (queue, state store, prompts, instant in-process policy, sandbox,
   verification, rewards, exactly-once commit, writer) next to the sandbox alone at the same
   sandbox concurrency (jailed processes at once = cores), in two versions: doing only the
   model's actions (rewrite, submit), and doing every jailed run the engine does (those and the
   verifier's rule search: one per task, over the original and the gold in one workspace —
   the rewrite lands on the gold, whose matches the verifier then knows). The second ratio is
   what the engine's own work costs (target ≥ 0.9); the first adds what verification costs.
   The engine runs its default number of episodes (more than sandbox slots, so an episode's
   bookkeeping overlaps another's jailed process);
2. the trajectory writer's records/s next to a plain ``json.dumps`` + ``write`` loop;
3. the daemon's peak RSS with 10,000 queued tasks.

Usage: ``.venv/bin/python benchmarks/pipeline.py [--tasks 120] [--concurrency 2] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from agentd.config import Settings, load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.records import Submit
from agentd.sandbox import Sandbox
from agentd.testing.tasks import make_task
from agentd.testing.writer_bench import writer_throughput
from agentd.verify.measure import gold_files
from agentd.verify.rules import find_matches_in

ROOT = Path(__file__).resolve().parent.parent


def project(tmp: Path, sandbox_concurrency: int) -> Settings:
    shutil.copytree(ROOT / "configs", tmp / "configs")
    cfg = tmp / "configs" / "sandbox.yaml"
    cfg.write_text(cfg.read_text().replace("concurrency: 0", f"concurrency: {sandbox_concurrency}"))
    return load_settings(tmp / "configs" / "agentd.yaml")


async def engine_steps_per_s(settings: Settings, n: int) -> float:
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [make_task(i) for i in range(n)])
    summary = await run_foreground(settings, RunOptions("dev", "reference", None, 1, "bench",
                                                        False))
    return float(summary["steps_per_s"])


async def sandbox_steps_per_s(settings: Settings, n: int, concurrency: int, *,
                              verify: bool) -> float:
    """The same two actions per task (rewrite, submit) through the sandbox alone, with as many
    tasks in flight as the sandbox has slots; with ``verify`` also the verifier's searches."""
    sandbox = Sandbox(settings.sandbox, workspaces_dir=Path(tempfile.mkdtemp()),
                      log_dir=settings.path(settings.sandbox.log_dir))
    tasks = [make_task(i) for i in range(n)]
    limiter = anyio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            task = tasks[i]
            if verify:  # the verifier's facts: the original and the gold in one search
                await find_matches_in(sandbox, task, [task.files, gold_files(task)])
            ws = await sandbox.prepare_workspace(f"{task.task_id}-b", dict(task.files))
            # act() hands back the after-snapshot the engine keeps (no third walk).
            await sandbox.act(ws, task.reference_actions[0], task_id=task.task_id)
            await sandbox.act(ws, Submit(), task_id=task.task_id)
            await sandbox.cleanup(ws)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return 2 * n / (time.perf_counter() - started)


def peak_rss_with_queue(tmp: Path, n: int) -> dict[str, float]:
    """Start the daemon paused, queue ``n`` tasks, read VmHWM (peak RSS) from /proc."""
    settings = project(tmp, 4)
    path = settings.path(settings.agentd.paths.processed_data) / "dev" / "tasks.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(path, [make_task(i) for i in range(n)])
    agentd = [sys.executable, "-m", "agentd"]
    cfg = ["--config", str(settings.config_path)]
    proc = subprocess.Popen([*agentd, "serve", *cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run([*agentd, "ctl", *cfg, "pause"], capture_output=True,
                              check=False).returncode == 0:
                break
            time.sleep(0.2)
        before = _rss(proc.pid)
        subprocess.run([*agentd, "ctl", *cfg, "--timeout", "120", "submit", "split=dev"],
                       capture_output=True, check=True)
        queued = _rss(proc.pid)
        subprocess.run([*agentd, "ctl", *cfg, "resume"], capture_output=True, check=True)
        time.sleep(10)
        status = json.loads(subprocess.run([*agentd, "ctl", *cfg, "--json", "status"],
                                           capture_output=True, check=True).stdout)
        running = _rss(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {"idle_peak_mb": before, "queued_peak_mb": queued, "after_10s_running_peak_mb": running,
            "steps_in_10s": status["steps"]["total"]}


def _rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def main_async(args: argparse.Namespace) -> None:
    """``--runs`` interleaved rounds (sandbox, sandbox + searches, engine): median ratios."""
    own: list[float] = []
    overall: list[float] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as a:
            settings = project(Path(a), args.concurrency)
            actions = await sandbox_steps_per_s(settings, args.tasks, args.concurrency,
                                                verify=False)
            jailed = await sandbox_steps_per_s(settings, args.tasks, args.concurrency,
                                               verify=True)
            engine = await engine_steps_per_s(settings, args.tasks)
        own.append(engine / jailed)
        overall.append(engine / actions)
        print(f"run {run + 1}: engine {engine:7.1f} steps/s | sandbox, same jailed runs "
              f"{jailed:7.1f} (ratio {own[-1]:.3f}) | sandbox, model actions only "
              f"{actions:7.1f} (ratio {overall[-1]:.3f})")
    episodes = settings.agentd.episodes.concurrency
    print(f"median of {args.runs} (tasks {args.tasks}, sandbox concurrency {args.concurrency}, "
          f"engine episodes {episodes}): engine / same jailed runs {statistics.median(own):.3f} "
          f"(target >= 0.9); engine / model actions only {statistics.median(overall):.3f}")
    with tempfile.TemporaryDirectory() as b:
        writer = await writer_throughput(20_000, Path(b))
    print(f"writer  {writer['writer_records_per_s']:8d} records/s   json.dumps+write "
          f"{writer['baseline_records_per_s']:8d} records/s   ratio {writer['ratio']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                        help="jailed processes at once (default: cores, as in production)")
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="interleaved engine/sandbox pairs")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS part")
    args = parser.parse_args()
    anyio.run(main_async, args, backend="asyncio", backend_options={"use_uvloop": True})
    if args.no_rss:
        return
    with tempfile.TemporaryDirectory() as c:
        rss = peak_rss_with_queue(Path(c), args.queued)
    print(f"daemon  peak RSS idle {rss['idle_peak_mb']} MB, with {args.queued} queued "
          f"{rss['queued_peak_mb']} MB, after 10 s running {rss['after_10s_running_peak_mb']} MB "
          f"({rss['steps_in_10s']} steps)")


if __name__ == "__main__":
    main()
