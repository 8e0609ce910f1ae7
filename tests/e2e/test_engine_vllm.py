"""The real daemon against the real vLLM (CPU) server: constrained decoding, every step kept.

SmolLM2-135M gets most steps wrong; what this tier checks is that whatever it writes is
recorded exactly once, with the protocol's structured output honoured, and that the report
states the actor's (honest, low) precision.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from agentd.datasets import write_tasks
from agentd.episode import protocol
from agentd.testing.tasks import make_task
from agentd.testing.vllm_cpu import SERVED_NAME, VLLMServer
from agentd.trajectories import iter_records
from agentd.trajectories.verify import verify_paths

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]
TASKS = 3


def _configure(root: Path, server: VLLMServer) -> Path:
    url = urlparse(server.base_url)
    actors = {
        "actors": [{"name": "cpu0", "host": url.hostname, "port": url.port,
                    "served_model_name": SERVED_NAME, "quantization": None,
                    "max_model_len": 8192, "max_concurrent_requests": 8}],
        "client": {"timeout_s": 300, "max_retries": 1},
        "sampling": {"temperature": 0.7, "max_tokens": 200, "seed": 11,
                     "structured_output": True},
    }
    (root / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
    cfg = root / "configs" / "agentd.yaml"
    cfg.write_text(cfg.read_text().replace("max_steps: 8", "max_steps: 3")
                   .replace("llm_timeout_s: 120", "llm_timeout_s: 300"))
    tasks = root / "data" / "processed" / "dev" / "tasks.jsonl"
    tasks.parent.mkdir(parents=True)
    write_tasks(tasks, [make_task(i, max_steps=3) for i in range(TASKS)])
    return cfg


def _ctl(cfg: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "agentd", "ctl", "--config", str(cfg),
                           "--json", *args], capture_output=True, text=True, check=True,
                          timeout=60)
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_daemon_records_every_step_of_a_real_model(vllm_server: VLLMServer,
                                                   tmp_project: Path) -> None:
    """Submit to the daemon, wait, then: shards clean, one record per step, regex honoured."""
    cfg = _configure(tmp_project, vllm_server)
    daemon = subprocess.Popen([sys.executable, "-m", "agentd", "serve", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run([sys.executable, "-m", "agentd", "ctl", "--config", str(cfg),
                               "ping"], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.2)
        _ctl(cfg, "submit", "split=dev", "policy=actor", "run_id=e2e")
        deadline = time.monotonic() + 1500
        while time.monotonic() < deadline:
            queue = _ctl(cfg, "status")["queue"]
            assert isinstance(queue, dict)
            if queue["queued"] + queue["leased"] == 0:
                break
            time.sleep(2)
        actors = _ctl(cfg, "actors")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=120) == 0

    run_dir = tmp_project / "trajectories" / "raw" / "e2e"
    report = verify_paths([run_dir])
    assert report.ok, report.summary()
    records = [r for _, _, r in iter_records([run_dir])]
    assert records and not any(isinstance(r, Exception) for r in records)
    episodes = {(r.task_id, r.episode) for r in records}
    assert len(episodes) == TASKS
    for r in records:
        assert r.policy.kind == "actor" and r.policy.endpoint == "cpu0"
        assert r.usage.completion_tokens > 0
        if r.model_output.raw and r.usage.completion_tokens < 200:  # finished, not truncated
            assert isinstance(protocol.parse(r.model_output.raw), protocol.ParsedOutput), (
                r.model_output.raw)
    assert "actor" in actors

    proc = subprocess.run([sys.executable, "-m", "agentd", "report", "--config", str(cfg)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_project / "reports" / "teacher" / "metrics.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| actor/cpu0"))
    writes = [r for r in records if r.reward.step_kind == "write"]
    verified = sum(r.verified for r in writes)
    precision = verified / len(writes) if writes else 0.0
    assert float(row.split("|")[5]) == pytest.approx(precision, abs=1e-3)
    print(f"real vLLM actor precision: {verified}/{len(writes)} writing steps", file=sys.stderr)
