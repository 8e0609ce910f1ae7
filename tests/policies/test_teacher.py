"""TeacherPolicy: primary then fallback, keys from env or .env.local, cost per request."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agentd.config import SamplingConfig, TeacherEndpoint
from agentd.errors import EndpointResponseError, EndpointUnavailableError
from agentd.policies.teacher import TeacherPolicy, price
from agentd.testing.fake_vllm import FakeVLLM

from .helpers import MODEL, fast_config, request

SAMPLING = SamplingConfig(temperature=0.2, max_tokens=128, seed=3, structured_output=False)


def endpoint(
    fake: FakeVLLM, name: str, env: str, *, prompt: float = 0.3, completion: float = 1.2
) -> TeacherEndpoint:
    return TeacherEndpoint(
        name=name,
        base_url=f"{fake.base_url}/v1",
        model=MODEL,
        api_key_env=env,
        price_prompt_per_m=prompt,
        price_completion_per_m=completion,
    )


def make_teacher(
    primary: FakeVLLM,
    fallback: FakeVLLM | None,
    *,
    env: dict[str, str] | None = None,
    env_file: Path | None = None,
    **overrides: object,
) -> TeacherPolicy:
    keys = {"PRIMARY_KEY": "pk-primary", "FALLBACK_KEY": "fk-fallback"} if env is None else env
    return TeacherPolicy(
        endpoint(primary, "minimax-m2", "PRIMARY_KEY"),
        endpoint(fallback, "glm-4.6", "FALLBACK_KEY", prompt=0.6, completion=2.2)
        if fallback
        else None,
        client_config=fast_config(**overrides),
        sampling=SAMPLING,
        env=keys,
        env_file=env_file,
    )


class TestTeacher:
    async def test_primary_answers_with_cost(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """The primary answers; answered_by names it and cost uses its prices."""
        fake.script("one two three four")
        teacher = make_teacher(fake, fake2)
        gen = await teacher.generate(request(structured_output={"regex": "x"}))
        await teacher.aclose()
        assert gen.answered_by == "minimax-m2"
        expected = price(endpoint(fake, "p", "K"), gen.usage.prompt_tokens, 4)
        assert gen.usage.cost_usd == pytest.approx(expected) and expected > 0
        body = fake.generation_bodies()[-1]
        assert "structured_outputs" not in body and "return_token_ids" not in body
        assert fake.requests[-1].headers["authorization"] == "Bearer pk-primary"
        assert fake2.generation_bodies() == []

    async def test_falls_back_after_primary_retries(
        self, fake: FakeVLLM, fake2: FakeVLLM, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A primary that keeps failing with 5xx is retried, then GLM answers and it is recorded."""
        caplog.set_level(logging.DEBUG)
        fake.misbehave("status", status=500)
        fake2.script("fallback answer")
        teacher = make_teacher(fake, fake2)
        gen = await teacher.generate(request())
        stats = teacher.statistics()
        await teacher.aclose()
        assert (gen.answered_by, gen.text) == ("glm-4.6", "fallback answer")
        assert gen.usage.cost_usd == pytest.approx(
            (gen.usage.prompt_tokens * 0.6 + gen.usage.completion_tokens * 2.2) / 1e6
        )
        assert len(fake.generation_bodies()) == 3  # 1 + max_retries
        assert (stats.requests, stats.fallbacks) == (1, 1)
        assert "teacher.fallback" in caplog.text
        assert "pk-primary" not in caplog.text and "fk-fallback" not in caplog.text

    async def test_falls_back_on_a_4xx_without_retrying_it(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """A 401 from the primary is not retried there, but the fallback still answers."""
        fake.misbehave("status", status=401)
        teacher = make_teacher(fake, fake2)
        gen = await teacher.generate(request())
        await teacher.aclose()
        assert gen.answered_by == "glm-4.6" and len(fake.generation_bodies()) == 1

    async def test_open_circuit_skips_the_primary(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """Once the primary's circuit is open, requests go straight to the fallback."""
        fake.refuse_connections()
        teacher = make_teacher(fake, fake2, circuit_failures=2, circuit_reset_s=60, max_retries=1)
        first = await teacher.generate(request())
        second = await teacher.generate(request())
        stats = teacher.statistics()
        await teacher.aclose()
        assert first.answered_by == second.answered_by == "glm-4.6"
        primary = next(s for s in stats.endpoints if s.name == "minimax-m2")
        assert primary.state == "open" and primary.requests == 2
        assert stats.fallbacks == 2

    async def test_missing_key_uses_fallback(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """A primary without a key is never called; the fallback answers."""
        teacher = make_teacher(fake, fake2, env={"FALLBACK_KEY": "fk"})
        gen = await teacher.generate(request())
        await teacher.aclose()
        assert gen.answered_by == "glm-4.6" and fake.requests == []

    async def test_key_from_env_local_file(self, fake: FakeVLLM, tmp_path: Path) -> None:
        """A key absent from the environment is read from .env.local."""
        env_file = tmp_path / ".env.local"
        env_file.write_text("# keys\nexport PRIMARY_KEY='pk-from-file'\n")
        teacher = make_teacher(fake, None, env={}, env_file=env_file)
        await teacher.generate(request())
        await teacher.aclose()
        assert fake.requests[-1].headers["authorization"] == "Bearer pk-from-file"

    async def test_both_failing_raises(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """When the fallback fails too, the caller gets the fallback's error."""
        fake.misbehave("status", status=500)
        fake2.misbehave("status", status=400)
        teacher = make_teacher(fake, fake2)
        with pytest.raises(EndpointResponseError) as info:
            await teacher.generate(request())
        await teacher.aclose()
        assert info.value.status == 400

    async def test_no_fallback_and_no_key(self, fake: FakeVLLM) -> None:
        """Without a fallback, a missing key is an EndpointUnavailableError naming the variable."""
        teacher = make_teacher(fake, None, env={})
        with pytest.raises(EndpointUnavailableError, match=r"\$PRIMARY_KEY"):
            await teacher.generate(request())
        await teacher.aclose()
        assert teacher.info().kind == "teacher"
