"""``ActorPool``: the ``actor`` policy — vLLM servers from ``configs/vllm_actors.yaml``.

One ``OpenAIClient`` (one connection pool) per actor, a ``Router`` over them for routing,
per-actor concurrency caps, retries and circuit breaking, and a health loop for the daemon::

    pool = ActorPool(settings.actors.actors, settings.actors.client, settings.actors.sampling)
    tg.start_soon(pool.run_health)          # in the daemon's task group
    generation = await pool.generate(request)
    pool.statistics()                       # -> PoolStatistics(actors=(ActorStatistics, ...))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agentd.config import ActorConfig, ClientConfig, SamplingConfig
from agentd.errors import EndpointUnavailableError, PolicyError
from agentd.policies.base import GenerateRequest, Generation, estimate_chat_tokens
from agentd.policies.client import OpenAIClient
from agentd.policies.endpoint import Endpoint, EndpointStatistics
from agentd.policies.router import Router
from agentd.policies.wire import CallParams, params_from_request, sampling_dict
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile
from agentd.records import PolicyInfo

ActorStatistics = EndpointStatistics  # the name `agentd ctl actors` callers know it by


@dataclass(frozen=True)
class PoolStatistics:
    """One snapshot per actor plus pool totals (``dataclasses.asdict`` gives the JSON)."""

    actors: tuple[ActorStatistics, ...]
    in_flight: int
    requests: int
    usable: int


class ActorPool:
    """The ``actor`` policy over a fixed set of vLLM servers."""

    def __init__(
        self,
        actors: list[ActorConfig],
        client_config: ClientConfig,
        sampling: SamplingConfig,
        *,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        profiles: dict[str, ProviderProfile] | None = None,
    ) -> None:
        """``clock`` times the circuit breakers' reset (tests inject one)."""
        if not actors:
            raise PolicyError("no actors configured (configs/vllm_actors.yaml: actors)")
        self.sampling = sampling
        self.timeout_s = timeout_s
        self.model = actors[0].served_model_name
        known = profiles or DEFAULT_PROFILES
        # One profile for the pool: the actors serve one model the same way, so a step's
        # grammar and parsing do not depend on which actor answers.
        self.profile = known.get(actors[0].profile, DEFAULT_PROFILES["vllm-plain"])
        self.context_tokens = min(a.max_model_len for a in actors)
        endpoints = [_endpoint(actor, client_config, self.profile, clock) for actor in actors]
        self.router = Router(endpoints, client_config)

    @property
    def kind(self) -> str:
        return "actor"

    def info(self, request: GenerateRequest | None = None) -> PolicyInfo:
        params = self._params(request) if request is not None else None
        sampling = sampling_dict(params) if params else self.sampling.model_dump()
        seed = params.seed if params else self.sampling.seed
        return PolicyInfo(kind="actor", model=self.model, endpoint="", seed=seed, sampling=sampling)

    def _params(self, request: GenerateRequest) -> CallParams:
        return params_from_request(request, self.sampling, self.profile)

    async def generate(self, request: GenerateRequest) -> Generation:
        """Answer from the least-loaded healthy actor; raises ``PolicyError`` when none can."""
        return await self.router.generate(self._params(request), timeout_s=self.timeout_s)

    async def complete(self, params: CallParams) -> Generation:
        """A raw call (chat or prompt) through the same routing, for tools and benchmarks."""
        return await self.router.generate(params, timeout_s=self.timeout_s)

    async def count_chat(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens of ``messages`` under the actors' chat template (``/tokenize``); a
        high estimate when no actor can tokenize right now."""
        for endpoint in self.router.endpoints:
            if endpoint.usable():
                try:
                    return await endpoint.client.count_chat(messages)
                except PolicyError:
                    break
        return estimate_chat_tokens(messages)

    def reserved_tokens(self) -> int:
        return self.sampling.max_tokens

    def context_window(self) -> int:
        """The smallest context among the actors: the configured ``max_model_len``, lowered
        to what a server reports in ``/v1/models`` once a health check has seen it."""
        seen = [e.max_model_len for e in self.router.endpoints if e.max_model_len]
        return min([self.context_tokens, *seen])

    async def tokenize(self, text: str) -> list[int]:
        """Exact token ids from any usable actor (they all serve the same model)."""
        for endpoint in self.router.endpoints:
            if endpoint.usable():
                return await endpoint.client.tokenize(text)
        raise EndpointUnavailableError(f"no actor available: {self.router.summary()}")

    async def check_health(self) -> None:
        await self.router.check_health()

    async def run_health(self) -> None:
        """The background health loop; run it in the daemon's task group."""
        await self.router.run_health()

    def statistics(self) -> PoolStatistics:
        actors = self.router.statistics()
        return PoolStatistics(
            actors=actors,
            in_flight=sum(a.in_flight for a in actors),
            requests=sum(a.requests for a in actors),
            usable=sum(1 for e in self.router.endpoints if e.usable()),
        )

    async def aclose(self) -> None:
        await self.router.aclose()


def _endpoint(actor: ActorConfig, config: ClientConfig, profile: ProviderProfile,
              clock: Callable[[], float]) -> Endpoint:
    client = OpenAIClient(
        actor.base_url, actor.served_model_name, config=config, name=actor.name, vllm=True,
        profile=profile,
    )
    return Endpoint(
        client, max_concurrent=actor.max_concurrent_requests, config=config, clock=clock
    )
