"""OpenAIClient against the fake vLLM server over real HTTP on loopback."""

from __future__ import annotations

import logging

import anyio
import pytest

from agentd.errors import EndpointResponseError, EndpointTimeoutError, EndpointUnavailableError
from agentd.policies.client import OpenAIClient
from agentd.policies.wire import CallParams
from agentd.testing.fake_vllm import FakeVLLM

from .helpers import MODEL, fast_config

STUCK_S = 60  # only a request that truly hangs takes this long; the assertions never time it

CHAT = CallParams(messages=[{"role": "user", "content": "hi"}], max_tokens=32, seed=1)
PROMPT = CallParams(prompt="def f():", max_tokens=32)


def make_client(fake: FakeVLLM, **overrides: object) -> OpenAIClient:
    return OpenAIClient(fake.base_url, MODEL, config=fast_config(**overrides), name="a0")


class TestGenerate:
    async def test_chat_returns_scripted_text_and_usage(self, fake: FakeVLLM) -> None:
        """A chat completion returns the server's text, finish reason, usage and who answered."""
        fake.script("<think>x</think><action>{}</action>")
        client = make_client(fake)
        gen = await client.generate(CHAT)
        await client.aclose()
        assert gen.text == "<think>x</think><action>{}</action>"
        assert gen.finish_reason == "stop"
        assert gen.usage.completion_tokens == 1
        assert gen.usage.prompt_tokens > 0
        assert (gen.answered_by, gen.model) == ("a0", MODEL)
        assert gen.total_ms > 0 and gen.ttft_ms is None

    async def test_token_ids_and_logprobs_are_recorded(self, fake: FakeVLLM) -> None:
        """With return_token_ids and logprobs on, ids and logprobs land in Usage."""
        fake.script("one two three")
        client = make_client(fake, logprobs=True)
        gen = await client.generate(CHAT)
        await client.aclose()
        assert gen.usage.completion_token_ids is not None
        assert len(gen.usage.completion_token_ids) == 3
        assert (
            gen.usage.prompt_token_ids
            and len(gen.usage.prompt_token_ids) == gen.usage.prompt_tokens
        )
        assert gen.usage.logprobs == pytest.approx([-0.01, -0.02, -0.03])
        body = fake.generation_bodies()[-1]
        assert body["return_token_ids"] is True and body["logprobs"] is True

    async def test_raw_prompt_uses_completions_endpoint(self, fake: FakeVLLM) -> None:
        """A prompt without messages goes to /v1/completions and parses text_completion."""
        fake.script("    return 1")
        client = make_client(fake, logprobs=True)
        gen = await client.generate(PROMPT)
        await client.aclose()
        assert gen.text == "    return 1"
        assert fake.requests[-1].path == "/v1/completions"
        assert gen.usage.prompt_token_ids and gen.usage.logprobs is not None

    async def test_max_tokens_truncation_reports_length(self, fake: FakeVLLM) -> None:
        """A reply cut by max_tokens comes back with finish_reason 'length'."""
        fake.script("a b c d e f")
        client = make_client(fake)
        gen = await client.generate(CallParams(messages=CHAT.messages, max_tokens=2))
        await client.aclose()
        assert (gen.text, gen.finish_reason) == ("a b", "length")

    async def test_structured_outputs_sent_and_guided_never(self, fake: FakeVLLM) -> None:
        """The constraint travels as structured_outputs; no guided_* field is ever sent."""
        client = make_client(fake)
        params = CallParams(messages=CHAT.messages, structured_output={"regex": "[ab]+"})
        await client.generate(params)
        await client.aclose()
        body = fake.generation_bodies()[-1]
        assert body["structured_outputs"] == {"regex": "[ab]+"}
        assert not [k for k in body if k.startswith("guided_")]

    async def test_guided_fields_are_refused_before_sending(self, fake: FakeVLLM) -> None:
        """Extra guided_* fields raise instead of being silently ignored by vLLM."""
        client = make_client(fake)
        with pytest.raises(Exception, match="guided_"):
            await client.generate(CallParams(prompt="x", extra={"guided_regex": "a"}))
        await client.aclose()
        assert fake.generation_bodies() == []

    async def test_teacher_mode_sends_no_vllm_extensions(self, fake: FakeVLLM) -> None:
        """With vllm=False neither structured_outputs nor return_token_ids is sent."""
        client = OpenAIClient(
            f"{fake.base_url}/v1", MODEL, config=fast_config(), name="t", vllm=False
        )
        await client.generate(CallParams(messages=CHAT.messages, structured_output={"regex": "a"}))
        await client.aclose()
        body = fake.generation_bodies()[-1]
        assert "structured_outputs" not in body and "return_token_ids" not in body


class TestStreaming:
    async def test_stream_accumulates_text_and_measures_ttft(self, fake: FakeVLLM) -> None:
        """SSE chunks are joined, usage comes from the final chunk, TTFT is measured."""
        fake.script("alpha beta gamma")
        client = make_client(fake, stream=True)
        gen = await client.generate(CHAT)
        await client.aclose()
        assert gen.text == "alpha beta gamma"
        assert gen.usage.completion_tokens == 3
        assert gen.usage.completion_token_ids and len(gen.usage.completion_token_ids) == 3
        assert gen.usage.prompt_token_ids
        assert gen.ttft_ms is not None and 0 < gen.ttft_ms <= gen.total_ms
        assert fake.generation_bodies()[-1]["stream_options"] == {"include_usage": True}

    async def test_stream_of_raw_prompt(self, fake: FakeVLLM) -> None:
        """Completions streams (text_completion chunks) parse too."""
        fake.script("x = 1")
        client = make_client(fake, stream=True)
        gen = await client.generate(PROMPT)
        await client.aclose()
        assert gen.text == "x = 1" and gen.usage.prompt_token_ids

    async def test_cut_stream_raises_response_error(self, fake: FakeVLLM) -> None:
        """A stream that stops before [DONE] is an EndpointResponseError, not a short answer."""
        fake.script("a b c d e f g")
        fake.misbehave("cut_stream", after=3)
        client = make_client(fake, stream=True)
        with pytest.raises(EndpointResponseError) as info:
            await client.generate(CHAT)
        await client.aclose()
        assert info.value.status is None

    async def test_dripping_stream_hits_the_hard_deadline(self, fake: FakeVLLM) -> None:
        """Tokens arriving slowly but steadily still end at the per-request deadline."""
        fake.script(" ".join(["tok"] * 200))
        fake.misbehave("drip", delay_s=0.05)
        client = make_client(fake, stream=True, max_retries=0)
        with anyio.fail_after(STUCK_S), pytest.raises(EndpointTimeoutError):
            await client.generate(CHAT, timeout_s=0.5)
        await client.aclose()


class TestMisbehaviour:
    @pytest.mark.parametrize("status", [400, 429, 500, 503])
    async def test_error_status_maps_with_message(self, fake: FakeVLLM, status: int) -> None:
        """vLLM's {"error": {...}} bodies become EndpointResponseError with the status."""
        fake.misbehave("status", status=status)
        client = make_client(fake)
        with pytest.raises(EndpointResponseError, match=f"fake failure {status}") as info:
            await client.generate(CHAT)
        await client.aclose()
        assert info.value.status == status

    async def test_wrong_model_is_a_404(self, fake: FakeVLLM) -> None:
        """Asking for a model the server does not serve is a client error (404)."""
        client = OpenAIClient(fake.base_url, "other", config=fast_config(), name="a0")
        with pytest.raises(EndpointResponseError) as info:
            await client.generate(CHAT)
        await client.aclose()
        assert info.value.status == 404

    async def test_hang_times_out_within_bound(self, fake: FakeVLLM) -> None:
        """A server that never answers costs at most the timeout, never a hang."""
        fake.misbehave("hang")
        client = make_client(fake)
        with anyio.fail_after(STUCK_S), pytest.raises(EndpointTimeoutError):
            await client.generate(CHAT, timeout_s=0.3)
        await client.aclose()

    async def test_dripping_body_hits_the_hard_deadline(self, fake: FakeVLLM) -> None:
        """A JSON body trickling in below the read timeout still ends at the deadline."""
        fake.script("word " * 100)
        fake.misbehave("drip", delay_s=0.05)
        client = make_client(fake)
        with anyio.fail_after(STUCK_S), pytest.raises(EndpointTimeoutError):
            await client.generate(CHAT, timeout_s=0.4)
        await client.aclose()

    async def test_malformed_json_is_a_response_error(self, fake: FakeVLLM) -> None:
        """A truncated JSON body is EndpointResponseError with status 200."""
        fake.misbehave("malformed_json")
        client = make_client(fake)
        with pytest.raises(EndpointResponseError, match="not JSON") as info:
            await client.generate(CHAT)
        await client.aclose()
        assert info.value.status == 200

    @pytest.mark.parametrize("stream", [False, True])
    async def test_wrong_content_type_is_a_response_error(
        self, fake: FakeVLLM, stream: bool
    ) -> None:
        """An HTML page from a proxy is rejected by content type, streaming or not."""
        fake.misbehave("wrong_content_type")
        client = make_client(fake, stream=stream)
        with pytest.raises(EndpointResponseError, match="content-type"):
            await client.generate(CHAT)
        await client.aclose()

    async def test_refused_connection_is_unavailable(self, fake: FakeVLLM) -> None:
        """A closed port raises EndpointUnavailableError quickly."""
        fake.refuse_connections()
        client = make_client(fake)
        with anyio.fail_after(STUCK_S), pytest.raises(EndpointUnavailableError):
            await client.generate(CHAT)
        await client.aclose()


class TestHealthAndTokenize:
    async def test_health_needs_the_served_model(self, fake: FakeVLLM) -> None:
        """Healthy means /health 200 and /v1/models lists the served name."""
        client = make_client(fake)
        status = await client.health()
        assert status.ok and status.models == [MODEL]
        fake.misbehave("models_missing")
        status = await client.health()
        await client.aclose()
        assert not status.ok and "not served" in status.reason
        assert [r.path for r in fake.requests][:2] == ["/health", "/v1/models"]

    async def test_health_down_and_refused(self, fake: FakeVLLM) -> None:
        """A 503 /health or a closed port is unhealthy, never an exception."""
        client = make_client(fake)
        fake.misbehave("health_down", times=1)
        assert not (await client.health()).ok
        fake.refuse_connections()
        status = await client.health()
        await client.aclose()
        assert not status.ok and "cannot connect" in status.reason

    async def test_tokenize_returns_ids(self, fake: FakeVLLM) -> None:
        """POST /tokenize gives the token ids; the count matches the fake tokenizer."""
        client = make_client(fake)
        ids = await client.tokenize("a b c d")
        await client.aclose()
        assert len(ids) == 4 and all(isinstance(i, int) for i in ids)
        assert fake.requests[-1].path == "/tokenize"


class TestSecrets:
    async def test_key_is_sent_but_never_shown(
        self, fake: FakeVLLM, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The bearer key reaches the server but not repr, errors or log lines."""
        caplog.set_level(logging.DEBUG)
        client = OpenAIClient(
            fake.base_url, MODEL, api_key="sk-SECRET123", config=fast_config(), name="t"
        )
        await client.generate(CHAT)
        fake.misbehave("status", status=401)
        with pytest.raises(EndpointResponseError) as info:
            await client.generate(CHAT)
        await client.aclose()
        assert fake.requests[0].headers["authorization"] == "Bearer sk-SECRET123"
        assert "SECRET" not in repr(client) + str(info.value) + caplog.text
