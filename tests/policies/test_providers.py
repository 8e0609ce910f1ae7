"""Provider profiles over real HTTP: each fake answers in its provider's documented shape.

Shapes (see agentd/testing/fake_shapes.py for the docs each follows): Qwen3 behind vLLM with
thinking off, on, and on with the reasoning parser; MiniMax M2 with <think> in content and with
reasoning_split; GLM-4.6 with reasoning_content.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from agentd.config import ActorsConfig, SamplingConfig
from agentd.episode.protocol import ParsedOutput, parse_completion
from agentd.errors import EndpointResponseError, PromptTooLongError
from agentd.policies.client import OpenAIClient, retry_after
from agentd.policies.resilience import classify
from agentd.policies.wire import params_from_request
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile
from agentd.records import AstGrepRun, Submit
from agentd.testing.fake_models import NATIVE, ReferenceModel
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import make_task

from .helpers import fast_config, request

TASK = make_task(1)
PROMPT = f"{TASK.instruction}\n- {next(iter(TASK.files))} (4 lines)\nStep 1 of 4"

# name: (fake flavour, profile, the model's habit, path prefix of the API base)
CASES = {
    "qwen3-nothink": ("vllm", "qwen3-nothink", "protocol", ""),
    "qwen3-think": ("vllm", "qwen3-think", "native", ""),
    "qwen3-think-parsed": ("qwen3_parsed", "qwen3-think-parsed", "native", ""),
    "minimax-in-content": ("minimax", "minimax-in-content", "native_and_protocol", ""),
    "minimax-split": ("minimax", "minimax-m2", "native_and_protocol", ""),
    "glm-4.6": ("glm", "glm-4.6", "native_and_protocol", "/api/paas/v4"),
}
MINIMAX_IN_CONTENT = DEFAULT_PROFILES["minimax-m2"].model_copy(
    update={"reasoning": "in_content", "extra_body": {"reasoning_split": False}})


def profile_named(name: str) -> ProviderProfile:
    return MINIMAX_IN_CONTENT if name == "minimax-in-content" else DEFAULT_PROFILES[name]


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeVLLM, OpenAIClient]]:
    flavour, profile, habit, prefix = CASES[request.param]
    with FakeVLLM(model="m", flavour=flavour, max_model_len=100_000) as fake:
        fake.reply_with(ReferenceModel([TASK], habit))
        client = OpenAIClient(fake.base_url + (prefix or "/v1"), "m", config=fast_config(),
                              name=request.param, vllm=flavour in ("vllm", "qwen3_parsed"),
                              profile=profile_named(profile))
        yield request.param, fake, client


async def _ask(client: OpenAIClient, *, stream: bool = False) -> tuple[str, str, bool, str]:
    params = params_from_request(request(PROMPT), SamplingConfig(max_tokens=512, seed=3),
                                 client.profile)
    try:
        g = await client.generate(params, stream=stream)
    finally:
        await client.aclose()
    return g.text, g.reasoning, g.native_reasoning, g.finish_reason


class TestReasoningShapes:
    @pytest.mark.parametrize("stream", [False, True])
    async def test_answer_parses_and_reasoning_is_apart(
        self, case: tuple[str, FakeVLLM, OpenAIClient], stream: bool
    ) -> None:
        """Every shape yields an answer the parser takes and the native reasoning beside it."""
        name, _, client = case
        text, reasoning, native, finish = await _ask(client, stream=stream)
        parsed = parse_completion(text, finish, think_optional=native)
        assert isinstance(parsed, ParsedOutput), (name, parsed, text)
        assert parsed.action == TASK.reference_actions[0]
        if name == "qwen3-nothink":
            assert reasoning == "" and parsed.think.startswith("Step 1")
        else:
            assert reasoning == NATIVE  # the native block, whole, and only once
            assert NATIVE not in text

    async def test_request_carries_the_profile(self, case: tuple[str, FakeVLLM, OpenAIClient]
                                               ) -> None:
        """extra_body, recommended sampling and the seed policy reach the wire."""
        _, fake, client = case
        await _ask(client)
        body = fake.generation_bodies()[-1]
        profile = client.profile
        for key, value in profile.extra_body.items():
            assert body[key] == value
        assert body.get("top_k") == profile.sampling.top_k
        assert body["temperature"] == profile.sampling.temperature
        assert ("seed" in body) == profile.honours_seed
        assert (profile.max_tokens_field in body) and body[profile.max_tokens_field] == 512


class TestProfilesValidate:
    @pytest.mark.parametrize("doc", [
        {"kind": "vllm", "reasoning": "none",
         "extra_body": {"chat_template_kwargs": {"enable_thinking": True}}},
        {"kind": "vllm", "reasoning": "field",
         "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
        {"kind": "minimax", "reasoning": "in_content", "extra_body": {"reasoning_split": True},
         "honours_seed": False},
        {"kind": "minimax", "reasoning": "field", "extra_body": {"reasoning_split": True}},
        {"kind": "zai", "reasoning": "none", "honours_seed": False},
        {"kind": "openai", "extra_body": {"model": "x"}},
        {"kind": "openai", "extra_body": {"guided_regex": "x"}},
        {"kind": "openai", "sampling": {"top_q": 1}},
    ])
    def test_contradictions_are_refused(self, doc: dict[str, object]) -> None:
        """A profile that contradicts its provider's documented behaviour is a config error."""
        with pytest.raises(ValidationError):
            ProviderProfile.model_validate(doc)

    def test_unknown_profile_name_is_refused(self) -> None:
        """An actor naming a profile that does not exist fails validation, naming it."""
        with pytest.raises(ValidationError, match="unknown profile 'nope'"):
            ActorsConfig.model_validate({"actors": [{"name": "a", "port": 1, "profile": "nope"}]})

    def test_actor_needs_a_vllm_profile(self) -> None:
        """Actors are vLLM servers: a hosted teacher's profile is refused for them."""
        with pytest.raises(ValidationError, match="not a vllm profile"):
            ActorsConfig.model_validate(
                {"actors": [{"name": "a", "port": 1, "profile": "glm-4.6"}]})


class TestErrorShapes:
    async def test_minimax_error_with_http_200_is_a_rate_limit(self) -> None:
        """base_resp 1002 under HTTP 200 is a 429, not a malformed body."""
        with FakeVLLM(model="m", flavour="minimax") as fake:
            fake.misbehave("error_200", times=1)
            client = OpenAIClient(fake.base_url + "/v1", "m", config=fast_config(), name="mm",
                                  vllm=False, profile=DEFAULT_PROFILES["minimax-m2"])
            with pytest.raises(EndpointResponseError) as info:
                await _ask(client)
        assert info.value.status == 429 and classify(info.value) == "throttled"

    async def test_openai_error_with_http_200(self) -> None:
        """{"error": ...} with no choices under HTTP 200 carries its own code."""
        with FakeVLLM(model="m", flavour="glm") as fake:
            fake.misbehave("error_200", times=1)
            client = OpenAIClient(fake.base_url + "/api/paas/v4", "m", config=fast_config(),
                                  name="glm", vllm=False, profile=DEFAULT_PROFILES["glm-4.6"])
            with pytest.raises(EndpointResponseError) as info:
                await _ask(client)
        assert info.value.status == 429

    async def test_context_400_is_prompt_too_long(self) -> None:
        """vLLM's maximum-context-length 400 becomes PromptTooLongError."""
        with FakeVLLM(model="m", max_model_len=300) as fake:
            client = OpenAIClient(fake.base_url, "m", config=fast_config(), name="a")
            with pytest.raises(PromptTooLongError, match="maximum context length"):
                await _ask(client)
        assert classify(PromptTooLongError("x")) == "prompt_too_long"

    async def test_retry_after_header_is_read(self) -> None:
        """A 429's Retry-After reaches the exception, in seconds or as an HTTP date."""
        with FakeVLLM(model="m") as fake:
            fake.misbehave("status", status=429, retry_after=2, times=1)
            client = OpenAIClient(fake.base_url, "m", config=fast_config(), name="a")
            with pytest.raises(EndpointResponseError) as info:
                await _ask(client)
        assert info.value.retry_after_s == 2.0
        assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 30) == 30.0
        assert retry_after("soon") is None


class TestTruncation:
    async def test_length_is_truncated_not_a_format_error(self) -> None:
        """An answer cut by max_tokens reports `truncated`."""
        with FakeVLLM(model="m") as fake:
            fake.reply_with(ReferenceModel([TASK], "protocol"))
            client = OpenAIClient(fake.base_url, "m", config=fast_config(), name="a")
            params = params_from_request(request(PROMPT), SamplingConfig(max_tokens=5))
            g = await client.generate(params)
            await client.aclose()
        assert g.finish_reason == "length"
        result = parse_completion(g.text, g.finish_reason)
        assert not isinstance(result, ParsedOutput) and result.kind == "truncated"


def test_reference_model_follows_the_steps() -> None:
    """The scripted model answers step 1 with the reference action and then submits."""
    model = ReferenceModel([TASK])
    body = {"messages": [{"role": "user", "content": PROMPT}]}
    first = parse_completion(model(body), "stop")
    body["messages"][0]["content"] = PROMPT.replace("Step 1", "Step 2")
    second = parse_completion(model(body), "stop")
    assert isinstance(first, ParsedOutput) and isinstance(first.action, AstGrepRun)
    assert isinstance(second, ParsedOutput) and second.action == Submit()
    assert model.unknown == 0
