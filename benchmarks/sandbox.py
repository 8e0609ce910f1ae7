"""Jail overhead: a bare ``ast-grep run`` vs the same action through ``Sandbox.apply_action``.

Both run interleaved in one process on the same small file (restored before every run,
outside the timed region), so machine noise hits both sides alike. Prints the medians, the
per-action overhead and the ratio; targets: overhead < 6 ms, ratio <= 2.5.

    .venv/bin/python benchmarks/sandbox.py [--runs 40] [--realtime]

``--realtime`` (root only) runs the benchmark and its children under SCHED_FIFO priority 1,
so that other work on a shared machine does not land inside the timed region; the numbers
then show the cost of the jail itself rather than the run-queue length.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from agentd.config import SandboxConfig
from agentd.records import AstGrepRun
from agentd.sandbox import Sandbox

SOURCE = "def f(x):\n    return x + 1\n\n\nprint(f(2))\n"
ACTION = AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python", paths=["a.py"])


def bare_argv(sg: str) -> list[str]:
    return [sg, "run", "--pattern=$A + 1", "--rewrite=$A + 2", "--lang=python",
            "--update-all", "--", "a.py"]


async def timed_bare(argv: list[str], cwd: Path) -> float:
    (cwd / "a.py").write_text(SOURCE)
    started = time.perf_counter()
    await anyio.run_process(argv, cwd=cwd, check=True)
    return (time.perf_counter() - started) * 1000


async def timed_sandbox(sandbox: Sandbox, ws: Path) -> float:
    (ws / "a.py").write_text(SOURCE)
    started = time.perf_counter()
    result = await sandbox.apply_action(ws, ACTION)
    elapsed = (time.perf_counter() - started) * 1000
    if not result.ok or result.changed_files != ["a.py"]:
        sys.exit(f"sandboxed action failed: {result}")
    return elapsed


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sandbox = Sandbox(SandboxConfig(), workspaces_dir=root / "ws", log_dir=root / "logs")
        ws = await sandbox.prepare_workspace("bench", {"a.py": SOURCE})
        bare_dir = root / "bare"
        bare_dir.mkdir()
        argv = bare_argv(str(sandbox.binaries["ast-grep"].path))
        bare, jailed = [], []
        for i in range(runs + 3):  # three warm-up rounds are discarded
            b, j = await timed_bare(argv, bare_dir), await timed_sandbox(sandbox, ws)
            if i >= 3:
                bare.append(b)
                jailed.append(j)
    report(bare, jailed, runs)


def report(bare: list[float], jailed: list[float], runs: int) -> None:
    mb, mj = statistics.median(bare), statistics.median(jailed)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'':24}{'median ms':>10}{'min ms':>10}{'p90 ms':>10}")
    for name, xs in (("bare ast-grep run", bare), ("apply_action (bwrap)", jailed)):
        p90 = sorted(xs)[int(len(xs) * 0.9) - 1]
        print(f"{name:24}{statistics.median(xs):10.2f}{min(xs):10.2f}{p90:10.2f}")
    print(f"overhead {mj - mb:.2f} ms/action (min-to-min {min(jailed) - min(bare):.2f}), "
          f"ratio {mj / mb:.2f} ({runs} runs, interleaved)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO 1 (root only)")
    args = parser.parse_args()
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    anyio.run(main, args.runs)
