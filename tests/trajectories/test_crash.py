"""A real writer process killed with SIGKILL mid-stream leaves only whole lines after reopen."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentd.trajectories import TrajectoryWriter, last_record_key
from agentd.trajectories.verify import verify_paths

from .helpers import shard_keys, shard_paths, writer_config

CHILD = Path(__file__).with_name("crash_child.py")
ROUNDS = 4


def _kill_after_ready(directory: Path, first: int, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(directory), str(first)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read() if proc.stderr else line
        time.sleep(delay)
    finally:
        proc.kill()
        proc.communicate()


def _torn(run_dir: Path) -> bool:
    data = shard_paths(run_dir)[-1].read_bytes()
    return bool(data) and not data.endswith(b"\n")


@pytest.mark.slow
class TestSigkill:
    async def test_restarts_after_sigkill_keep_a_gapless_ordered_prefix(
        self, tmp_path: Path
    ) -> None:
        """Each restart resumes after last_record_key; the end result has every step once."""
        run_dir = tmp_path / "crash"
        rng = random.Random(7)
        torn_rounds = 0
        for _ in range(ROUNDS):
            last = last_record_key(run_dir)
            first = 0 if last is None else last[3] + 1
            _kill_after_ready(tmp_path, first, rng.uniform(0.05, 0.25))
            torn_rounds += _torn(run_dir)
        final_torn = _torn(run_dir)
        async with TrajectoryWriter(tmp_path, writer_config()) as w:
            last = await w.prepare("crash")
        assert last is not None
        steps = [k[3] for k in shard_keys(run_dir)]
        assert steps == list(range(last[3] + 1))
        report = verify_paths([tmp_path])
        assert report.ok, report.problems
        assert w.statistics().torn_lines_repaired == int(final_torn)
        print(f"{torn_rounds}/{ROUNDS} kills tore a line; {last[3] + 1} steps survived")
