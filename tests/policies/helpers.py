"""Helpers for the policy tests: requests, fast client settings, actor configs."""

from __future__ import annotations

from agentd.config import ActorConfig, ClientConfig, SamplingConfig
from agentd.policies.base import GenerateRequest
from agentd.records import Task, TaskMeta
from agentd.testing.clock import FakeClock
from agentd.testing.fake_vllm import FakeVLLM

__all__ = ["FakeClock"]

MODEL = "qwen3-14b-awq"
TASK = Task(
    task_id="t1",
    split="dev",
    language="python",
    instruction="rename x",
    files={},
    gold={},
    reference_actions=[],
    meta=TaskMeta(dataset="d", source_path="a.py", recipe="r", license="MIT", source_sha256="0"),
)


def request(text: str = "hi", **kw: object) -> GenerateRequest:
    return GenerateRequest(messages=[{"role": "user", "content": text}], task=TASK, step=0, **kw)  # type: ignore[arg-type]


def fast_config(**overrides: object) -> ClientConfig:
    """Timeouts and backoffs small enough for tests, large enough for a loaded 2-core box."""
    base: dict[str, object] = {
        "timeout_s": 2.0,
        "connect_timeout_s": 0.5,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "circuit_failures": 3,
        "circuit_reset_s": 0.3,
        "health_interval_s": 0.1,
    }
    return ClientConfig.model_validate(base | overrides)


def actor(fake: FakeVLLM, name: str, *, limit: int = 4) -> ActorConfig:
    return ActorConfig(
        name=name, port=fake.port, max_concurrent_requests=limit, served_model_name=fake.model
    )


SAMPLING = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=64, seed=7)

