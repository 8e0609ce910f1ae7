"""Admin ``submit`` through the real daemon and ``agentd ctl``: every argument is bounded and
checked before anything is committed, and recovery survives a poisoned outbox row."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from test_daemon_process import DaemonProcess

from agentd.datasets import write_tasks
from agentd.testing.tasks import make_task


def _dev_split(root: Path) -> Path:
    tasks = root / "data" / "processed" / "dev" / "tasks.jsonl"
    tasks.parent.mkdir(parents=True, exist_ok=True)
    write_tasks(tasks, [make_task(i) for i in range(2)])
    return tasks


def _fifo(root: Path) -> str:
    path = root / "data" / "processed" / "fifo.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return str(path)


def _start_and_stop(root: Path) -> DaemonProcess:
    """Start the daemon, wait until it is ready, stop it: it must exit 0."""
    (root / "notify.sock").unlink(missing_ok=True)
    d = DaemonProcess(root)
    try:
        d.messages_until("READY=1")
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    return d


BAD = {
    "episodes_huge": (["episodes=3000000"], "episodes must be between 1 and 64"),
    "episodes_negative": (["episodes=-1"], "episodes must be between 1 and 64"),
    "episodes_zero": (["episodes=0"], "episodes must be between 1 and 64"),
    "limit_negative": (["limit=-5"], "limit must be between 1"),
    "task_ids_string": (["task_ids=abc"], "task_ids must be a list"),
    "dev_zero": (["tasks_file=/dev/zero"], "not under the data directories"),
    "outside_data": (["tasks_file=/etc/passwd"], "not under the data directories"),
    "fifo": ([":fifo"], "is not a regular file"),
    "run_id_escape": (["run_id=../x"], "not a safe directory name"),
    "unknown_split": (["split=nowhere"], "known: dev, test, train"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_submit_refused_nothing_committed(tmp_project: Path,
                                              case: tuple[list[str], str]) -> None:
    """A bad submit is one line and exit 2; the queue is still empty and the daemon, even
    restarted, serves as before (a refused run id never reaches the outbox)."""
    argv, message = case
    _dev_split(tmp_project)
    argv = [f"tasks_file={_fifo(tmp_project)}" if a == ":fifo" else a for a in argv]
    d = DaemonProcess(tmp_project)
    try:
        d.messages_until("READY=1")
        reply = d.ctl("submit", "split=dev", *argv) if not argv[0].startswith("split") \
            else d.ctl("submit", *argv)
        assert reply.returncode == 2, reply
        assert len(reply.stderr.strip().splitlines()) == 1 and message in reply.stderr
        status = json.loads(d.ctl("--json", "status").stdout)
        assert sum(v for v in status["queue"].values() if isinstance(v, int)) == 0
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    if "run_id" in argv[0]:  # the bricking case: a restart must still recover
        _start_and_stop(tmp_project)


def test_poisoned_outbox_row_is_skipped(tmp_project: Path) -> None:
    """An outbox row with an unsafe run id (written by an older version) is skipped and
    reported at recovery; the daemon still becomes ready and stops cleanly."""
    _start_and_stop(tmp_project)
    db = sqlite3.connect(tmp_project / "data" / "state.sqlite3")
    with db:
        db.execute("INSERT INTO outbox(run_id, task_id, episode, step, record) "
                   "VALUES ('../x', 't', 0, 0, x'7b7d')")
        db.execute("INSERT INTO outbox(run_id, task_id, episode, step, record) "
                   "VALUES ('ok-run', 't', 0, 0, x'6e6f74206a736f6e')")
    db.close()
    again = _start_and_stop(tmp_project)
    events = {e["event"]: e for e in again.log_events()}
    assert events["recovery.outbox_skipped"]["rows"] == 1
    assert "recovery.outbox_row_skipped" in events
    assert events["engine.recovered"]["outbox_poisoned"] == 2
