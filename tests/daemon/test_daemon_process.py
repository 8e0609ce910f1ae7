"""The real daemon as a subprocess: lifecycle, signals, lock, sd_notify, ctl."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class DaemonProcess:
    """``agentd serve`` in a temporary project, with a notify socket we listen on."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "configs" / "agentd.yaml"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(root / "notify.sock"))
        self.notify.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(root / "notify.sock"),
               "WATCHDOG_USEC": "2000000"}
        env.pop("AGENTD_SOCKET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentd", "serve", "--config", str(self.config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def messages_until(self, wanted: str) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self.notify.recv(4096).decode()
            seen.append(msg)
            if wanted in msg.splitlines():
                return seen
        raise AssertionError(f"{wanted} not seen in {seen}")

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agentd", "ctl", "--config", str(self.config), *args],
            capture_output=True, text=True, check=False, timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            self.notify.close()
        return code

    def log_events(self) -> list[dict[str, object]]:
        path = self.root / "logs" / "agentd.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def daemon(tmp_project: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_project)
    try:
        d.messages_until("READY=1")
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.notify.close()


class TestLifecycle:
    def test_status_reload_and_graceful_stop(self, daemon: DaemonProcess) -> None:
        """Start → ctl status → SIGHUP reload → SIGTERM drain → exit code 0."""
        status = daemon.ctl("--json", "status")
        assert status.returncode == 0, status.stderr
        body = json.loads(status.stdout)
        assert body["state"] == "running" and "queue" in body and "writer" in body
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.messages_until("RELOADING=1")
        daemon.messages_until("READY=1")
        assert daemon.ctl("ping").returncode == 0
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.messages_until("STOPPING=1")
        # Wait for the exit; a second SIGTERM (stop()) would race the end of the drain.
        assert daemon.proc.wait(timeout=30) == 0
        events = [e["event"] for e in daemon.log_events()]
        assert "daemon.reloaded" in events and events[-1] == "daemon.stopped"

    def test_watchdog_pings_arrive(self, daemon: DaemonProcess) -> None:
        """With WATCHDOG_USEC set, WATCHDOG=1 arrives from the event loop."""
        daemon.messages_until("WATCHDOG=1")
        assert daemon.stop() == 0

    def test_second_daemon_on_same_state_dir_refuses(self, daemon: DaemonProcess) -> None:
        """A second daemon on the same state directory exits 2 with one clear line."""
        proc = subprocess.run(
            [sys.executable, "-m", "agentd", "serve", "--config", str(daemon.config)],
            capture_output=True, text=True, check=False, timeout=30)
        assert proc.returncode == 2
        assert "another agentd" in proc.stderr and "Traceback" not in proc.stderr
        assert daemon.stop() == 0

    def test_ctl_shutdown_stops_the_daemon(self, daemon: DaemonProcess) -> None:
        """`agentd ctl shutdown` drains and exits 0."""
        reply = daemon.ctl("shutdown")
        assert reply.returncode == 0, reply.stderr
        assert daemon.proc.wait(timeout=30) == 0
        daemon.stop()

    def test_pause_and_resume_show_in_status(self, daemon: DaemonProcess) -> None:
        """pause/resume flip the state that status reports."""
        assert daemon.ctl("pause").returncode == 0
        assert json.loads(daemon.ctl("--json", "status").stdout)["state"] == "paused"
        assert daemon.ctl("resume").returncode == 0
        assert json.loads(daemon.ctl("--json", "status").stdout)["state"] == "running"
        assert daemon.stop() == 0

    def test_bad_config_is_one_line_exit_2(self, tmp_project: Path) -> None:
        """A bad config value names file and key in one line and exits 2."""
        cfg = tmp_project / "configs" / "agentd.yaml"
        cfg.write_text(cfg.read_text().replace("concurrency: 4", "concurrency: many"))
        proc = subprocess.run([sys.executable, "-m", "agentd", "serve", "--config", str(cfg)],
                              capture_output=True, text=True, check=False, timeout=30)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "episodes.concurrency" in lines[0] and "agentd.yaml" in lines[0]


class TestWork:
    def test_submit_runs_episodes_and_status_counts_them(self, tmp_project: Path) -> None:
        """ctl submit queues a split; the daemon runs it; status and the shards agree."""
        from agentd.datasets import write_tasks
        from agentd.testing.tasks import make_task
        from agentd.trajectories.verify import verify_paths

        tasks = tmp_project / "data" / "processed" / "dev" / "tasks.jsonl"
        tasks.parent.mkdir(parents=True)
        write_tasks(tasks, [make_task(i) for i in range(4)])
        d = DaemonProcess(tmp_project)
        try:
            d.messages_until("READY=1")
            reply = d.ctl("--json", "submit", "split=dev", "episodes=2", "run_id=w1")
            assert reply.returncode == 0, reply.stderr
            assert json.loads(reply.stdout)["episodes_added"] == 8
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = json.loads(d.ctl("--json", "status").stdout)
                if status["queue"]["done"] == 8:
                    break
                time.sleep(0.3)
            assert status["queue"]["done"] == 8
            assert status["steps"]["verified"] == 16
            assert d.stop() == 0
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        report = verify_paths([tmp_project / "trajectories" / "raw" / "w1"])
        assert report.ok and report.records == 16

    def test_tail_streams_log_events(self, daemon: DaemonProcess) -> None:
        """ctl tail streams the daemon's log events as they happen."""
        tail = subprocess.Popen(
            [sys.executable, "-m", "agentd", "ctl", "--config", str(daemon.config), "--json",
             "tail"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert tail.stdout is not None
            ready, _, _ = select.select([tail.stdout], [], [], 60)
            assert ready, "ctl tail never said it had subscribed"
            first = json.loads(tail.stdout.readline())
            assert first["event"] == "tail.subscribed" and first["min_level"] == "info"
            assert daemon.ctl("reload").returncode == 0
            events = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ready, _, _ = select.select([tail.stdout], [], [], 1.0)
                if not ready:
                    continue
                event = json.loads(tail.stdout.readline())
                events.append(event["event"])
                if event["event"] == "daemon.reloaded":
                    break
            assert "daemon.reloaded" in events
        finally:
            tail.kill()
            tail.wait()
            if tail.stdout is not None:
                tail.stdout.close()
        assert daemon.stop() == 0


class TestSignals:
    def test_second_signal_stops_at_once(self, tmp_project: Path) -> None:
        """SIGTERM drains (here: waits on a hanging LLM); a second SIGTERM ends it at once."""
        import yaml

        from agentd.datasets import write_tasks
        from agentd.testing.fake_vllm import FakeVLLM
        from agentd.testing.tasks import make_task

        tasks = tmp_project / "data" / "processed" / "dev" / "tasks.jsonl"
        tasks.parent.mkdir(parents=True)
        write_tasks(tasks, [make_task(0)])
        with FakeVLLM(model="qwen3-14b-awq") as fake:
            fake.misbehave("hang")
            actors = {"actors": [{"name": "hang", "port": fake.port}],
                      "client": {"timeout_s": 300, "max_retries": 0}}
            (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
            d = DaemonProcess(tmp_project)
            try:
                d.messages_until("READY=1")
                assert d.ctl("submit", "split=dev", "policy=actor").returncode == 0
                deadline = time.monotonic() + 20
                while not fake.generation_bodies() and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert fake.generation_bodies(), "the episode never reached the LLM"
                d.proc.send_signal(signal.SIGTERM)
                d.messages_until("STOPPING=1")
                status = json.loads(d.ctl("--json", "status").stdout)
                assert status["daemon"]["stopping"] and d.proc.poll() is None  # still draining
                d.proc.send_signal(signal.SIGTERM)
                # The hanging request has 300 s left; only the forced stop ends it within this.
                assert d.proc.wait(timeout=120) == 0
            finally:
                if d.proc.poll() is None:
                    d.proc.kill()
                    d.proc.wait()
                d.notify.close()
            events = [e["event"] for e in d.log_events()]
            assert "daemon.forced_stop" in events and events[-1] == "daemon.stopped"


def test_bad_submit_is_exit_2_with_one_line(daemon: DaemonProcess) -> None:
    """A submit the daemon refuses as a user mistake exits 2 with one line, no traceback."""
    reply = daemon.ctl("submit", "split=nowhere")
    assert reply.returncode == 2
    assert len(reply.stderr.strip().splitlines()) == 1 and "UsageError" in reply.stderr
    assert daemon.stop() == 0


def test_ctl_actors_probes_and_reports_pool(tmp_project: Path) -> None:
    """ctl actors probes every configured actor and, once used, shows the pool's statistics."""
    import yaml

    from agentd.datasets import write_tasks
    from agentd.testing.fake_vllm import FakeVLLM
    from agentd.testing.tasks import make_task, solve

    tasks = tmp_project / "data" / "processed" / "dev" / "tasks.jsonl"
    tasks.parent.mkdir(parents=True)
    write_tasks(tasks, [make_task(0)])
    with FakeVLLM(model="qwen3-14b-awq") as fake:
        fake.reply_with(solve)
        actors = {"actors": [{"name": "up", "port": fake.port},
                             {"name": "down", "port": 1}]}
        (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
        d = DaemonProcess(tmp_project)
        try:
            d.messages_until("READY=1")
            before = json.loads(d.ctl("--json", "actors").stdout)
            assert {p["name"]: p["ready"] for p in before["probe"]} == {"up": True,
                                                                        "down": False}
            assert d.ctl("submit", "split=dev", "policy=actor").returncode == 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if json.loads(d.ctl("--json", "status").stdout)["queue"]["done"] == 1:
                    break
                time.sleep(0.3)
            after = json.loads(d.ctl("--json", "actors").stdout)
            assert d.stop() == 0
        finally:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
    stats = {a["name"]: a for a in after["actor"]["actors"]}
    assert stats["up"]["requests"] >= 2 and stats["up"]["in_flight"] == 0
