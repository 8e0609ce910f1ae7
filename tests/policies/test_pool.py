"""ActorPool against fake vLLM actors: routing, limits, retries, failover, circuit, health."""

from __future__ import annotations

import dataclasses
import json

import anyio
import pytest

from agentd.errors import EndpointResponseError, EndpointUnavailableError
from agentd.policies.pool import ActorPool
from agentd.testing.fake_vllm import FakeVLLM

from .helpers import SAMPLING, FakeClock, actor, fast_config, request


def make_pool(*fakes: FakeVLLM, limit: int = 4, clock: FakeClock | None = None,
              **overrides: object) -> ActorPool:
    actors = [actor(f, f"a{i}", limit=limit) for i, f in enumerate(fakes)]
    if clock is None:
        return ActorPool(actors, fast_config(**overrides), SAMPLING)
    return ActorPool(actors, fast_config(**overrides), SAMPLING, clock=clock)


def stats_of(pool: ActorPool, name: str) -> dict[str, object]:
    return next(dataclasses.asdict(s) for s in pool.statistics().actors if s.name == name)


class TestRouting:
    async def test_generation_carries_sampling_and_structured_output(self, fake: FakeVLLM) -> None:
        """Config sampling fills the body; the request's structured_output is forwarded."""
        pool = make_pool(fake)
        gen = await pool.generate(request(structured_output={"regex": "a+"}, temperature=0.5))
        await pool.aclose()
        body = fake.generation_bodies()[-1]
        assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.5, 7, 64)
        assert body["structured_outputs"] == {"regex": "a+"}
        assert gen.answered_by == "a0"
        assert pool.info(request()).kind == "actor"

    async def test_concurrent_requests_spread_and_respect_limits(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """16 concurrent requests over two actors capped at 3 each: both used, never over 3."""
        for f in (fake, fake2):
            f.token_delay_s = 0.01
        pool = make_pool(fake, fake2, limit=3)
        async with anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(pool.generate, request())
        await pool.aclose()
        counts = [len(f.generation_bodies()) for f in (fake, fake2)]
        assert sum(counts) == 16 and min(counts) >= 5
        assert fake.counters.max_in_flight <= 3 and fake2.counters.max_in_flight <= 3
        assert all(s.in_flight == 0 for s in pool.statistics().actors)

    async def test_least_loaded_actor_gets_the_next_request(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """While a0 is busy with a request that hangs, the next one goes to a1."""
        fake.misbehave("hang", times=1)
        pool = make_pool(fake, fake2, timeout_s=600)
        pool.router.endpoints[1].requests = 1  # make a0 the first choice
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.generate, request())
            with anyio.fail_after(60):
                while stats_of(pool, "a0")["in_flight"] != 1:
                    await anyio.sleep(0.01)
            second = await pool.generate(request())
            tg.cancel_scope.cancel()
        await pool.aclose()
        assert second.answered_by == "a1"


class TestRetries:
    async def test_5xx_and_429_are_retried(self, fake: FakeVLLM) -> None:
        """A 500 then a 429 are retried on the same actor and the third attempt answers."""
        fake.misbehave("status", status=500, times=1)
        fake.misbehave("status", status=429, times=1)
        pool = make_pool(fake)
        gen = await pool.generate(request())
        await pool.aclose()
        assert gen.text and len(fake.generation_bodies()) == 3
        assert stats_of(pool, "a0")["errors"] == {"server": 1, "throttled": 1}

    async def test_400_is_never_retried(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """A 400 is raised after exactly one request, with no failover."""
        fake.misbehave("status", status=400)
        fake2.misbehave("status", status=400)
        pool = make_pool(fake, fake2)
        with pytest.raises(EndpointResponseError) as info:
            await pool.generate(request())
        await pool.aclose()
        assert info.value.status == 400
        assert len(fake.generation_bodies()) + len(fake2.generation_bodies()) == 1

    async def test_retries_are_bounded(self, fake: FakeVLLM) -> None:
        """With max_retries=2 a permanently failing actor sees three attempts, then the error."""
        fake.misbehave("status", status=503)
        pool = make_pool(fake, circuit_failures=10)
        with pytest.raises(EndpointResponseError):
            await pool.generate(request())
        await pool.aclose()
        assert len(fake.generation_bodies()) == 3

    async def test_fails_over_to_the_healthy_actor(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """With a0 refusing connections every request is answered by a1."""
        fake.refuse_connections()
        pool = make_pool(fake, fake2)
        answers = [await pool.generate(request()) for _ in range(4)]
        await pool.aclose()
        assert {g.answered_by for g in answers} == {"a1"}
        assert (
            stats_of(pool, "a0")["errors"] == {"connect": 1}
            or stats_of(pool, "a0")["errors"]["connect"] >= 1
        )

    async def test_hanging_actor_times_out_and_fails_over(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """A hanging actor costs one timeout; the request is then answered by the other."""
        fake.misbehave("hang")
        fake2.token_delay_s = 0.0
        pool = make_pool(fake, fake2, timeout_s=0.3)
        pool.router.endpoints[1].requests = 1  # make a0 the first choice
        with anyio.fail_after(60):  # stuck detection only: the timeout itself is counted below
            gen = await pool.generate(request())
        await pool.aclose()
        assert gen.answered_by == "a1"
        assert stats_of(pool, "a0")["errors"] == {"timeout": 1}

    async def test_no_actor_at_all_fails_fast(self, fake: FakeVLLM) -> None:
        """When every actor refuses, the caller gets EndpointUnavailableError after the retries.

        "Fast" means no request timeout is waited out: every attempt is a refused connect.
        """
        fake.refuse_connections()
        pool = make_pool(fake, max_retries=2, timeout_s=600)
        with anyio.fail_after(60), pytest.raises(EndpointUnavailableError):
            await pool.generate(request())
        await pool.aclose()
        assert stats_of(pool, "a0")["errors"] == {"connect": 3}


class TestCircuit:
    async def test_opens_after_consecutive_failures_and_stops_traffic(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """Three failures open a0's circuit; afterwards no request reaches a0."""
        fake.misbehave("status", status=500)
        pool = make_pool(fake, fake2, max_retries=0, circuit_failures=3, circuit_reset_s=60)
        for _ in range(3):
            pool.router.endpoints[1].requests += 100  # steer the first three to a0
            with pytest.raises(EndpointResponseError):
                await pool.generate(request())
        assert stats_of(pool, "a0")["state"] == "open"
        answers = [await pool.generate(request()) for _ in range(5)]
        await pool.aclose()
        assert {g.answered_by for g in answers} == {"a1"}
        assert len(fake.generation_bodies()) == 3
        assert stats_of(pool, "a0")["circuit_opened"] == 1

    async def test_half_open_probe_closes_the_circuit(self, fake: FakeVLLM) -> None:
        """After reset_s one probe goes through; its success closes the circuit."""
        fake.misbehave("status", status=500, times=3)
        clock = FakeClock()
        pool = make_pool(fake, max_retries=0, circuit_failures=3, circuit_reset_s=60,
                         clock=clock)
        for _ in range(3):
            with pytest.raises(EndpointResponseError):
                await pool.generate(request())
        with pytest.raises(EndpointUnavailableError, match="no endpoint available"):
            await pool.generate(request())
        clock.advance(59.9)
        assert stats_of(pool, "a0")["state"] == "open"
        clock.advance(0.1)
        assert stats_of(pool, "a0")["state"] == "half_open"
        gen = await pool.generate(request())
        await pool.aclose()
        assert gen.answered_by == "a0" and stats_of(pool, "a0")["state"] == "healthy"

    async def test_failed_probe_reopens(self, fake: FakeVLLM) -> None:
        """A failing half-open probe opens the circuit again for another reset period."""
        fake.misbehave("status", status=502)
        clock = FakeClock()
        pool = make_pool(fake, max_retries=0, circuit_failures=2, circuit_reset_s=60,
                         clock=clock)
        for _ in range(2):
            with pytest.raises(EndpointResponseError):
                await pool.generate(request())
        clock.advance(60)
        with pytest.raises(EndpointResponseError):
            await pool.generate(request())  # the probe
        clock.advance(59.9)
        await pool.aclose()
        assert stats_of(pool, "a0")["state"] == "open"
        assert len(fake.generation_bodies()) == 3

    async def test_client_errors_do_not_open_the_circuit(self, fake: FakeVLLM) -> None:
        """400s are the request's fault: the actor stays closed however many there are."""
        fake.misbehave("status", status=400)
        pool = make_pool(fake, circuit_failures=2)
        for _ in range(4):
            with pytest.raises(EndpointResponseError):
                await pool.generate(request())
        await pool.aclose()
        assert stats_of(pool, "a0")["state"] == "healthy"


class TestHealth:
    async def test_health_loop_routes_around_a_model_missing_actor(
        self, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """/health 200 but the model not listed: marked unhealthy, gets no traffic, recovers."""
        fake.misbehave("models_missing")
        pool = make_pool(fake, fake2)
        await pool.check_health()
        assert stats_of(pool, "a0")["state"] == "unhealthy"
        answers = [await pool.generate(request()) for _ in range(3)]
        fake.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.run_health)
            with anyio.fail_after(5):
                while stats_of(pool, "a0")["state"] != "healthy":
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
        await pool.aclose()
        assert {g.answered_by for g in answers} == {"a1"}
        assert fake.generation_bodies() == []

    async def test_statistics_snapshot(self, fake: FakeVLLM) -> None:
        """statistics() reports requests, successes, latency percentiles and limits."""
        pool = make_pool(fake, limit=5)
        for _ in range(3):
            await pool.generate(request())
        await pool.aclose()
        stats = pool.statistics()
        snap = stats.actors[0]
        assert (snap.name, snap.requests, snap.successes, snap.max_concurrent) == ("a0", 3, 3, 5)
        assert (stats.requests, stats.in_flight, stats.usable) == (3, 0, 1)
        as_json = json.loads(json.dumps(dataclasses.asdict(stats)))
        assert as_json["actors"][0]["state"] == "healthy"
        assert snap.latency_p50_ms is not None and snap.latency_p95_ms is not None
        assert snap.latency_p50_ms <= snap.latency_p95_ms
        with pytest.raises(dataclasses.FrozenInstanceError):
            snap.requests = 0  # type: ignore[misc]

    async def test_tokenize_uses_a_usable_actor(self, fake: FakeVLLM, fake2: FakeVLLM) -> None:
        """tokenize() skips an unhealthy actor and asks a healthy one."""
        fake.misbehave("health_down")
        pool = make_pool(fake, fake2)
        await pool.check_health()
        ids = await pool.tokenize("one two")
        await pool.aclose()
        assert len(ids) == 2 and fake2.requests[-1].path == "/tokenize"

    async def test_cancelled_request_frees_its_slot(self, fake: FakeVLLM) -> None:
        """A request cancelled from outside leaves no in-flight count behind."""
        fake.misbehave("hang")
        pool = make_pool(fake)
        with anyio.move_on_after(0.2):
            await pool.generate(request())
        snap = pool.statistics().actors[0]
        await pool.aclose()
        assert snap.in_flight == 0 and snap.state == "healthy"
