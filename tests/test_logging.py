"""JSON-lines logging with context fields and rotation."""

from __future__ import annotations

import json
from pathlib import Path

from agentd.logging import get_logger, log_context, setup_logging, shutdown_logging, subscribe


class TestJsonLogging:
    def test_lines_carry_ts_level_event_and_context(self, tmp_path: Path) -> None:
        """Every line has ts, level, event and the bound run/task/episode/step."""
        path = tmp_path / "agentd.jsonl"
        setup_logging(path, stderr=False)
        log = get_logger("agentd.test")
        with log_context(run_id="r1", task_id="t1", episode=0, step=2):
            log.info("step.done", reward=0.5)
        log.warning("outside")
        shutdown_logging()
        first, second = (json.loads(line) for line in path.read_text().splitlines())
        assert first["event"] == "step.done" and first["level"] == "info"
        assert (first["run_id"], first["task_id"], first["episode"], first["step"]) == (
            "r1", "t1", 0, 2)
        assert first["reward"] == 0.5 and first["ts"].endswith("+00:00")
        assert "run_id" not in second

    def test_rotation_by_size(self, tmp_path: Path) -> None:
        """Past max_bytes the file rotates and the backups are kept."""
        path = tmp_path / "agentd.jsonl"
        setup_logging(path, stderr=False, max_bytes=4096, backups=2)
        log = get_logger("agentd.test")
        for i in range(200):
            log.info("filler", i=i, pad="x" * 50)
        shutdown_logging()
        assert (tmp_path / "agentd.jsonl.1").exists()
        assert path.stat().st_size <= 4096

    def test_subscribers_see_events(self, tmp_path: Path) -> None:
        """Subscribers (ctl tail) receive each event as a dict."""
        setup_logging(None, stderr=False)
        seen: list[dict[str, object]] = []
        unsubscribe = subscribe(seen.append)
        get_logger("agentd.test").info("hello", n=1)
        unsubscribe()
        get_logger("agentd.test").info("after")
        shutdown_logging()
        assert [e["event"] for e in seen] == ["hello"]
