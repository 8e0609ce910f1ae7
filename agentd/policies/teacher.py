"""``TeacherPolicy``: the ``teacher`` policy — a hosted primary (MiniMax M2) and a fallback (GLM).

Both speak the OpenAI protocol. Each has its own client, retries and circuit breaker (a
one-endpoint ``Router``). The fallback answers when the primary fails after its retries, when
its circuit is open, or when its key is missing; ``Generation.answered_by`` names whoever
answered and ``usage.cost_usd`` prices the call with that teacher's per-million-token rates.
Keys come from the environment variable each teacher names, else from ``.env.local``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agentd.config import ClientConfig, SamplingConfig, TeacherEndpoint
from agentd.errors import EndpointUnavailableError, PolicyError
from agentd.logging import get_logger
from agentd.policies.base import GenerateRequest, Generation, estimate_chat_tokens
from agentd.policies.client import OpenAIClient
from agentd.policies.endpoint import Endpoint, EndpointStatistics
from agentd.policies.envfile import lookup_key, read_env_file
from agentd.policies.resilience import classify
from agentd.policies.router import Router
from agentd.policies.wire import CallParams, params_from_request, sampling_dict
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile
from agentd.records import PolicyInfo, Usage

log = get_logger(__name__)


@dataclass(frozen=True)
class TeacherStatistics:
    """Totals over the teacher policy's life, plus each endpoint's own snapshot."""

    endpoints: tuple[EndpointStatistics, ...]
    requests: int
    fallbacks: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


def price(config: TeacherEndpoint, prompt_tokens: int, completion_tokens: int,
          cached_prompt_tokens: int = 0) -> float:
    """Cost in USD of one call at the configured per-million-token prices; prompt tokens the
    provider served from its cache are priced at ``price_cached_prompt_per_m`` when set."""
    cached_rate = config.price_cached_prompt_per_m
    cached = min(cached_prompt_tokens, prompt_tokens) if cached_rate is not None else 0
    return (
        (prompt_tokens - cached) * config.price_prompt_per_m
        + cached * (cached_rate or 0.0)
        + completion_tokens * config.price_completion_per_m
    ) / 1_000_000


def _priced(config: TeacherEndpoint, usage: Usage) -> Usage:
    cost = price(config, usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)
    return msgspec.structs.replace(usage, cost_usd=cost)


class _Teacher:
    """One teacher endpoint, or the reason it cannot be used (no key)."""

    def __init__(
        self, config: TeacherEndpoint, key: str | None, client_config: ClientConfig,
        profile: ProviderProfile,
    ) -> None:
        self.config = config
        self.profile = profile
        self.router: Router | None = None
        if key is None:
            return
        client = OpenAIClient(
            config.base_url,
            config.model,
            api_key=key,
            config=client_config,
            name=config.name,
            vllm=profile.kind == "vllm",
            profile=profile,
        )
        endpoint = Endpoint(
            client, max_concurrent=config.max_concurrent_requests, config=client_config
        )
        self.router = Router([endpoint], client_config)

    def params(self, request: GenerateRequest, sampling: SamplingConfig) -> CallParams:
        return params_from_request(request, sampling, self.profile)

    async def ask(self, params: CallParams, timeout_s: float | None) -> Generation:
        if self.router is None:
            raise EndpointUnavailableError(
                f"{self.config.name}: ${self.config.api_key_env} is not set "
                "(environment or .env.local)"
            )
        generation = await self.router.generate(params, timeout_s=timeout_s)
        return msgspec.structs.replace(
            generation, usage=_priced(self.config, generation.usage),
            answered_by=self.config.name,
        )


class TeacherPolicy:
    """The ``teacher`` policy: primary, then fallback."""

    def __init__(
        self,
        primary: TeacherEndpoint,
        fallback: TeacherEndpoint | None = None,
        *,
        client_config: ClientConfig,
        sampling: SamplingConfig,
        env: Mapping[str, str] | None = None,
        env_file: Path | None = None,
        timeout_s: float | None = None,
        profiles: dict[str, ProviderProfile] | None = None,
    ) -> None:
        file_values = read_env_file(env_file)
        self.sampling = sampling
        self.timeout_s = timeout_s
        teachers = [primary] if fallback is None else [primary, fallback]
        known = profiles or DEFAULT_PROFILES
        self._teachers = [
            _Teacher(t, lookup_key(t.api_key_env, env=env, file_values=file_values), client_config,
                     known.get(t.profile, DEFAULT_PROFILES["openai-compatible"]))
            for t in teachers
        ]
        self.profile = self._teachers[0].profile  # the grammar and parsing follow the primary
        self._requests = 0
        self._fallbacks = 0
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._cost = 0.0

    @property
    def kind(self) -> str:
        return "teacher"

    def info(self, request: GenerateRequest | None = None) -> PolicyInfo:
        primary = self._teachers[0].config
        sampling = (
            sampling_dict(self._teachers[0].params(request, self.sampling))
            if request is not None
            else self.sampling.model_dump()
        )
        seed = sampling.get("seed")
        return PolicyInfo(
            kind="teacher",
            model=primary.model,
            endpoint=primary.base_url,
            seed=seed if isinstance(seed, int) else None,
            sampling=sampling,
        )

    def context_window(self) -> int | None:
        """The smallest documented context of the teachers (a fallback must fit too)."""
        windows = [t.profile.context_tokens for t in self._teachers if t.profile.context_tokens]
        return min(windows) if windows else None

    def reserved_tokens(self) -> int:
        return self.sampling.max_tokens

    async def count_chat(self, messages: list[dict[str, str]]) -> int:
        """Hosted teachers have no tokenizer endpoint: a deliberately high estimate."""
        return estimate_chat_tokens(messages)

    async def generate(self, request: GenerateRequest) -> Generation:
        """Ask the primary; on any failure ask the fallback; raise if neither answers."""
        self._requests += 1
        generation = await self._ask_in_order(request)
        self._prompt_tokens += generation.usage.prompt_tokens
        self._completion_tokens += generation.usage.completion_tokens
        self._cost += generation.usage.cost_usd
        return generation

    async def _ask_in_order(self, request: GenerateRequest) -> Generation:
        primary, *rest = self._teachers
        try:
            return await primary.ask(primary.params(request, self.sampling), self.timeout_s)
        except PolicyError as exc:
            if not rest:
                raise
            log.warning(
                "teacher.fallback",
                primary=primary.config.name,
                fallback=rest[0].config.name,
                error_kind=classify(exc),
                error=str(exc)[:200],
            )
            self._fallbacks += 1
            return await rest[0].ask(rest[0].params(request, self.sampling), self.timeout_s)

    def statistics(self) -> TeacherStatistics:
        endpoints = tuple(
            s for t in self._teachers if t.router is not None for s in t.router.statistics()
        )
        return TeacherStatistics(
            endpoints=endpoints,
            requests=self._requests,
            fallbacks=self._fallbacks,
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            cost_usd=round(self._cost, 6),
        )

    async def run_health(self) -> None:
        """Teachers are checked lazily by their circuits; nothing to poll."""

    async def aclose(self) -> None:
        for teacher in self._teachers:
            if teacher.router is not None:
                await teacher.router.aclose()
