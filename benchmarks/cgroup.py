"""Per-action cgroup cost: the same ``apply_action`` with ``cgroup: auto`` and ``cgroup: none``.

Both sandboxes run the same ast-grep rewrite interleaved in one process (file restored
outside the timed region), so load on a shared machine hits both alike. Prints the medians,
the per-action cost of making, joining and removing the action's group, and the ratio.

    .venv/bin/python benchmarks/cgroup.py [--runs 40] [--realtime]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from agentd.config import SandboxConfig
from agentd.records import AstGrepRun
from agentd.sandbox import Sandbox

SOURCE = "def f(x):\n    return x + 1\n"
ACTION = AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python", paths=["a.py"])


async def timed(sandbox: Sandbox, ws: Path) -> float:
    (ws / "a.py").write_text(SOURCE)
    started = time.perf_counter()
    result = await sandbox.apply_action(ws, ACTION)
    elapsed = (time.perf_counter() - started) * 1000
    assert result.ok, result
    return elapsed


async def main(runs: int) -> None:
    logging.getLogger("agentd").setLevel(logging.ERROR)  # the none backend's warning
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sides = {name: Sandbox(SandboxConfig(cgroup=name), workspaces_dir=root / name,  # type: ignore[arg-type]
                               log_dir=root / f"{name}-logs") for name in ("auto", "none")}
        spaces = {n: await s.prepare_workspace("bench", {"a.py": SOURCE})
                  for n, s in sides.items()}
        times: dict[str, list[float]] = {n: [] for n in sides}
        for i in range(runs + 3):  # three warm-up rounds are discarded
            order = list(sides) if i % 2 else list(reversed(sides))
            for name in order:
                t = await timed(sides[name], spaces[name])
                if i >= 3:
                    times[name].append(t)
    backend = sides["auto"].cgroups.name
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; auto = {backend}")
    for name, xs in times.items():
        print(f"cgroup {name:5} median {statistics.median(xs):7.2f} ms  min {min(xs):7.2f} ms")
    on, off = statistics.median(times["auto"]), statistics.median(times["none"])
    low = min(times["auto"]) - min(times["none"])
    print(f"cost {on - off:.2f} ms/action (min-to-min {low:.2f}), ratio {on / off:.2f} "
          f"({runs} runs, interleaved)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--realtime", action="store_true", help="SCHED_FIFO 1 (root only)")
    args = parser.parse_args()
    if args.realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    anyio.run(main, args.runs)
