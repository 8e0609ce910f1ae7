"""Prompts that fit: an actor run over real (large-file) dev tasks against a small context."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.testing.fake_models import ReferenceModel
from agentd.testing.fake_shapes import prompt_text, token_ids
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.runs import configure, dev_tasks, records, run, write_split

# dev_tasks builds the project's corpus (a few minutes) when `make corpus` has not: the
# stuck deadline has to cover that build too.
pytestmark = pytest.mark.timeout(900)

CONTEXT = 2048
MAX_TOKENS = 512


class TestContextFit:
    def test_no_request_over_the_context_and_no_episode_dies(self, tmp_project: Path) -> None:
        """30 real dev tasks (files up to ~60 KB) against a 2048-token actor: every request's
        prompt plus max_tokens fits, large files are windowed, nothing dies of prompt size."""
        tasks = dev_tasks(30)
        with FakeVLLM(model="qwen3-14b-awq", max_model_len=CONTEXT) as fake:
            fake.reply_with(ReferenceModel(tasks, "protocol"))
            settings = configure(tmp_project, actors=[{
                "name": "a0", "port": fake.port, "max_model_len": 8192,
                "profile": "qwen3-nothink"}], actor_max_tokens=MAX_TOKENS)
            # The configured 8192 is wrong on purpose: /v1/models' 2048 must win.
            write_split(settings, tasks)
            summary = run(settings, "fit", policy="actor")
            bodies = fake.generation_bodies()
        sizes = [len(token_ids(prompt_text(b))) + b["max_tokens"] for b in bodies]
        assert bodies and max(sizes) <= CONTEXT
        assert summary["episodes"]["dead"] == 0 and summary["episodes"]["done"] == 30
        steps = records(summary)
        assert any("windowed" in r.prompt for r in steps)
        assert all(r.parse_error is None for r in steps)
