"""Jail overhead: a bare ``ast-grep run`` vs the same action through ``Sandbox.apply_action``.

All sides run interleaved in one process on the same small file (restored before every run,
outside the timed region), so machine noise hits them alike: bare, bwrap (the default) and
firejail (when installed). Prints the medians, the per-action overhead and each jail's ratio
to bare; targets for bwrap: overhead < 6 ms, ratio <= 2.5. firejail has no target: the
number is the price of choosing it (docs/jailers.md).

    .venv/bin/python benchmarks/sandbox.py [--runs 40] [--realtime]

``--realtime`` (root only) runs the benchmark and its children under SCHED_FIFO priority 1,
so that other work on a shared machine does not land inside the timed region; the numbers
then show the cost of the jail itself rather than the run-queue length.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def jailers() -> list[str]:
    return ["bwrap", *(["firejail"] if shutil.which("firejail") else [])]


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sides: dict[str, tuple[Sandbox, Path]] = {}
        for name in jailers():
            sandbox = Sandbox(SandboxConfig(jailer=name),  # type: ignore[arg-type]
                              workspaces_dir=root / f"ws-{name}", log_dir=root / "logs")
            sides[name] = (sandbox, await sandbox.prepare_workspace("bench", {"a.py": SOURCE}))
        bare_dir = root / "bare"
        bare_dir.mkdir()
        argv = bare_argv(str(sides["bwrap"][0].binaries["ast-grep"].path))
        times: dict[str, list[float]] = {"bare": [], **{name: [] for name in sides}}
        for i in range(runs + 3):  # three warm-up rounds are discarded
            round_ = {"bare": await timed_bare(argv, bare_dir)}
            for name, (sandbox, ws) in sides.items():
                round_[name] = await timed_sandbox(sandbox, ws)
            if i >= 3:
                for name, ms in round_.items():
                    times[name].append(ms)
    report(times, runs)


def report(times: dict[str, list[float]], runs: int) -> None:
    bare = times["bare"]
    mb = statistics.median(bare)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'':26}{'median ms':>10}{'min ms':>10}{'p90 ms':>10}")
    for name, xs in times.items():
        label = "bare ast-grep run" if name == "bare" else f"apply_action ({name})"
        p90 = sorted(xs)[int(len(xs) * 0.9) - 1]
        print(f"{label:26}{statistics.median(xs):10.2f}{min(xs):10.2f}{p90:10.2f}")
    for name, xs in times.items():
        if name != "bare":
            mj = statistics.median(xs)
            print(f"{name:9} overhead {mj - mb:6.2f} ms/action (min-to-min "
                  f"{min(xs) - min(bare):.2f}), ratio {mj / mb:.2f}")
    print(f"({runs} runs, interleaved)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO 1 (root only)")
    args = parser.parse_args()
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    anyio.run(main, args.runs)
