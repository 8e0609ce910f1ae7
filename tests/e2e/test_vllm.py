"""The policies against a real vLLM server on CPU: health, tokenize, seeds, structured output."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest

from agentd.config import ActorConfig, ClientConfig, SamplingConfig
from agentd.policies.base import GenerateRequest
from agentd.policies.client import OpenAIClient
from agentd.policies.pool import ActorPool
from agentd.policies.wire import CallParams
from agentd.testing.tasks import empty_task
from agentd.testing.vllm_cpu import SERVED_NAME, VLLMServer

# The first test pays for server start (and, on a fresh machine, the setup script).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

TASK = empty_task("e2e")
CONFIG = ClientConfig(timeout_s=120, connect_timeout_s=5, max_retries=1, logprobs=True)


def ask(text: str, **kw: object) -> GenerateRequest:
    messages = [{"role": "user", "content": text}]
    return GenerateRequest(messages=messages, task=TASK, step=0, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def client(vllm_server: VLLMServer) -> AsyncIterator[OpenAIClient]:
    c = OpenAIClient(vllm_server.base_url, SERVED_NAME, config=CONFIG, name="cpu0")
    yield c
    await c.aclose()


@pytest.fixture
async def pool(vllm_server: VLLMServer) -> AsyncIterator[ActorPool]:
    url = urlparse(vllm_server.base_url)
    actor = ActorConfig(
        name="cpu0",
        host=url.hostname or "127.0.0.1",
        port=url.port or 80,
        max_concurrent_requests=8,
        served_model_name=SERVED_NAME,
    )
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=24, seed=0)
    p = ActorPool([actor], CONFIG, sampling)
    yield p
    await p.aclose()


class TestRealVLLM:
    async def test_health_lists_the_served_name(self, client: OpenAIClient) -> None:
        """/health is 200 and /v1/models lists qwen3-14b-awq."""
        status = await client.health()
        assert status.ok, status.reason
        assert SERVED_NAME in status.models

    async def test_tokenize_matches_the_prompt_tokens(self, client: OpenAIClient) -> None:
        """/tokenize counts exactly what a raw completion reports as its prompt tokens."""
        text = "def rename(old, new):\n    return new"
        ids = await client.tokenize(text)
        gen = await client.generate(CallParams(prompt=text, max_tokens=4, temperature=0.0))
        assert ids and gen.usage.prompt_tokens == len(ids)
        assert gen.usage.prompt_token_ids == ids

    async def test_same_seed_same_text(self, pool: ActorPool) -> None:
        """Sampling at temperature 1 with the same seed gives the same text; other seeds differ."""
        first = await pool.generate(ask("Write a haiku about code.", seed=1234))
        again = await pool.generate(ask("Write a haiku about code.", seed=1234))
        others = {
            (await pool.generate(ask("Write a haiku about code.", seed=s))).text for s in (1, 2, 3)
        }
        assert first.text and first.text == again.text
        assert others - {first.text}
        assert first.usage.completion_token_ids == again.usage.completion_token_ids
        assert first.usage.logprobs is not None
        assert len(first.usage.logprobs) == first.usage.completion_tokens

    async def test_structured_output_regex_is_honoured(self, pool: ActorPool) -> None:
        """A structured_outputs regex constrains the real model's output exactly."""
        pattern = r"<action>\{\"tool\": \"(submit|run_tests)\"\}</action>"
        gen = await pool.generate(
            ask("Finish the task.", structured_output={"regex": pattern}, max_tokens=40)
        )
        assert re.fullmatch(pattern, gen.text), gen.text

    async def test_streaming_matches_non_streaming(self, client: OpenAIClient) -> None:
        """Greedy output is the same streamed or not; streaming measures time to first token."""
        params = CallParams(
            messages=[{"role": "user", "content": "Count to five."}],
            max_tokens=16,
            temperature=0.0,
            seed=0,
        )
        plain = await client.generate(params, stream=False)
        streamed = await client.generate(params, stream=True)
        assert streamed.text == plain.text
        assert streamed.usage.completion_tokens == plain.usage.completion_tokens
        assert streamed.ttft_ms is not None and streamed.ttft_ms <= streamed.total_ms
        assert streamed.usage.prompt_token_ids == plain.usage.prompt_token_ids


class TestLongPrompts:
    async def test_long_seeded_prompt_does_not_kill_the_engine(
        self, client: OpenAIClient
    ) -> None:
        """A ~6000-token prompt with a seed is answered (one prefill chunk: the serve script
        sets --max-num-batched-tokens to the context), and the engine still answers after."""
        status = await client.health()
        assert status.max_model_len is not None and status.max_model_len >= 8192
        code = "".join(f"def f{i}(x):\n    return x == None\n" for i in range(420))
        tokens = await client.count_chat([{"role": "user", "content": code}])
        assert 4000 < tokens < status.max_model_len - 64
        long = CallParams(messages=[{"role": "user", "content": code}], max_tokens=16,
                          temperature=0.7, seed=5)
        answer = await client.generate(long)
        assert answer.usage.prompt_tokens == tokens and answer.usage.completion_tokens > 0
        after = await client.generate(CallParams(prompt="x", max_tokens=2, seed=1))
        assert after.usage.completion_tokens > 0
