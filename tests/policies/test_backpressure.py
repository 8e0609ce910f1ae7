"""429 is backpressure: waits follow Retry-After, the breaker never counts it; RPM/TPM limits."""

from __future__ import annotations

import pytest

from agentd.config import ClientConfig
from agentd.errors import EndpointResponseError, PolicyError
from agentd.policies.client import OpenAIClient
from agentd.policies.endpoint import Endpoint
from agentd.policies.ratelimit import RateLimiter
from agentd.policies.router import Router
from agentd.policies.wire import CallParams
from agentd.testing.fake_vllm import FakeVLLM

from .helpers import fast_config

PARAMS = CallParams(messages=[{"role": "user", "content": "hi"}], max_tokens=8)


class FakeTime:
    """A clock that only moves when somebody sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _router(fake: FakeVLLM, config: ClientConfig, time: FakeTime) -> Router:
    client = OpenAIClient(fake.base_url, fake.model, config=config, name="a")
    router = Router([Endpoint(client, max_concurrent=4, config=config)], config)
    router.sleep = time.sleep
    return router


class TestThrottling:
    async def test_waits_retry_after_and_breaker_stays_closed(self, fake: FakeVLLM) -> None:
        """Five 429s with Retry-After: 2 (more than retries and the circuit threshold) are
        waited out, 2 s each; the circuit never opens; the sixth call answers."""
        fake.misbehave("status", status=429, retry_after=2, times=5)
        time = FakeTime()
        router = _router(fake, fast_config(max_retries=1, circuit_failures=2), time)
        try:
            generation = await router.generate(PARAMS)
        finally:
            await router.aclose()
        stats = router.statistics()[0]
        assert generation.text and time.sleeps == [2.0] * 5
        assert stats.circuit_opened == 0 and stats.state == "healthy"
        assert stats.errors == {"throttled": 5}

    async def test_throttle_wait_is_bounded(self, fake: FakeVLLM) -> None:
        """Past throttle_max_wait_s the 429 is raised instead of waited for."""
        fake.misbehave("status", status=429, retry_after=30)
        time = FakeTime()
        router = _router(fake, fast_config(throttle_max_wait_s=60), time)
        try:
            with pytest.raises(EndpointResponseError, match="429"):
                await router.generate(PARAMS)
        finally:
            await router.aclose()
        assert time.sleeps == [30.0, 30.0]

    async def test_server_errors_still_open_the_circuit(self, fake: FakeVLLM) -> None:
        """The breaker still counts real failures (500s)."""
        fake.misbehave("status", status=500)
        time = FakeTime()
        router = _router(fake, fast_config(max_retries=3, circuit_failures=2), time)
        try:
            with pytest.raises(PolicyError):
                await router.generate(PARAMS)
        finally:
            await router.aclose()
        assert router.statistics()[0].circuit_opened == 1


class TestRateLimiter:
    async def test_rpm_spaces_requests(self) -> None:
        """With rpm=60 a burst of 60 passes, the 61st waits one second."""
        time = FakeTime()
        limiter = RateLimiter(rpm=60, tpm=None, clock=time.clock, sleep=time.sleep)
        for _ in range(61):
            await limiter.acquire(0)
        assert sum(time.sleeps) == 1.0

    async def test_tpm_waits_for_tokens_and_settles(self) -> None:
        """A token budget blocks until refilled; settling returns what was not used."""
        time = FakeTime()
        limiter = RateLimiter(rpm=None, tpm=600, clock=time.clock, sleep=time.sleep)
        await limiter.acquire(600)
        limiter.settle(600, 300)  # only half was used: 300 tokens come back
        await limiter.acquire(300)
        assert time.sleeps == []
        await limiter.acquire(100)  # empty bucket: 100 tokens at 10/s
        assert time.sleeps == [10.0]
