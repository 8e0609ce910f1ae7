"""A real writer process killed with SIGKILL in the middle of a write leaves only whole lines.

The kill is placed by what the test sees, not by the clock: the test watches the newest
shard's last byte and kills the writer the moment a write is under way (the shard does not end
in a newline). Whether the kill tore the line is then read back from the file, and the repair
on the next open is counted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentd.trajectories import TrajectoryWriter, last_record_key
from agentd.trajectories.verify import verify_paths

from .helpers import shard_keys, shard_paths, writer_config

CHILD = Path(__file__).with_name("crash_child.py")
TORN_KILLS = 3  # kills that must land inside a write
MAX_KILLS = 60  # bound on attempts: a kill that misses the write (it ended first) is retried
STUCK_S = 120


def _ends_mid_line(path: Path) -> bool:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        return size > 0 and os.pread(f.fileno(), 1, size - 1) != b"\n"
    return False


def _kill_mid_write(directory: Path, first: int) -> int:
    """Start a writer, SIGKILL it while a write is seen in progress; return its exit status."""
    proc = subprocess.Popen([sys.executable, str(CHILD), str(directory), str(first)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read() if proc.stderr else line
        shard = shard_paths(directory / "crash")[-1]
        deadline = time.monotonic() + STUCK_S
        while not _ends_mid_line(shard):
            assert proc.poll() is None, "the writer died by itself"
            assert time.monotonic() < deadline, "no write seen in progress"
            shard = shard_paths(directory / "crash")[-1]
        proc.send_signal(signal.SIGKILL)
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


async def _repaired_on_open(directory: Path) -> int:
    """Open the run the way a restarted writer does; return the torn lines it cut."""
    async with TrajectoryWriter(directory, writer_config()) as w:
        await w.prepare("crash")
    return w.statistics().torn_lines_repaired


@pytest.mark.slow
@pytest.mark.timeout(900)
class TestSigkill:
    async def test_kills_inside_a_write_are_repaired_and_keep_a_gapless_prefix(
        self, tmp_path: Path
    ) -> None:
        """Each torn tail is cut on the next open; the end result has every step once, in order."""
        run_dir = tmp_path / "crash"
        torn = kills = 0
        while torn < TORN_KILLS:
            assert kills < MAX_KILLS, f"only {torn} of {kills} kills landed inside a write"
            last = last_record_key(run_dir)
            first = 0 if last is None else last[3] + 1
            assert _kill_mid_write(tmp_path, first) == -signal.SIGKILL
            kills += 1
            tore = _ends_mid_line(shard_paths(run_dir)[-1])
            repaired = await _repaired_on_open(tmp_path)
            assert repaired == int(tore), "a torn tail was not repaired exactly once"
            assert not _ends_mid_line(shard_paths(run_dir)[-1])
            torn += tore
        steps = [k[3] for k in shard_keys(run_dir)]
        assert steps == list(range(len(steps))) and steps
        report = verify_paths([tmp_path])
        assert report.ok, report.problems
        assert torn == TORN_KILLS
        print(f"{torn} of {kills} kills tore a line")
