"""``Endpoint``: one client plus its bookkeeping — circuit, health, in-flight count, latencies.

One attempt at a time: retries and choosing between endpoints are the ``Router``'s job.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agentd.config import ClientConfig
from agentd.errors import EndpointUnavailableError, PolicyError
from agentd.logging import get_logger
from agentd.policies.base import Generation
from agentd.policies.client import HealthStatus, OpenAIClient
from agentd.policies.ratelimit import RateLimiter
from agentd.policies.resilience import RETRYABLE, CircuitBreaker, LatencyWindow, classify
from agentd.policies.wire import CallParams

log = get_logger(__name__)


@dataclass(frozen=True)
class EndpointStatistics:
    """A snapshot of one endpoint for ``agentd ctl actors`` (``dataclasses.asdict`` → JSON)."""

    name: str
    endpoint: str
    model: str
    state: str  # healthy | unhealthy | open | half_open
    in_flight: int
    max_concurrent: int
    requests: int
    successes: int
    errors: dict[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    consecutive_failures: int = 0
    circuit_opened: int = 0
    last_error: str = ""
    max_model_len: int | None = None
    rate_limited_s: float = 0.0  # time spent waiting under the RPM/TPM limits


class Endpoint:
    """A client with a circuit breaker, a concurrency cap and counters."""

    def __init__(
        self,
        client: OpenAIClient,
        *,
        max_concurrent: int,
        config: ClientConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.name = client.name
        self.max_concurrent = max_concurrent
        self.breaker = CircuitBreaker(
            threshold=config.circuit_failures, reset_s=config.circuit_reset_s, clock=clock
        )
        self.healthy: bool | None = None  # None until the first health check: assume usable
        self.in_flight = 0
        self.requests = 0
        self.successes = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.latency = LatencyWindow()
        self.last_error = ""
        self.max_model_len: int | None = None  # from /v1/models, once a health check saw it
        profile = client.profile
        self.limiter = RateLimiter(rpm=profile.rpm, tpm=profile.tpm)

    def usable(self) -> bool:
        """Healthy (or not yet checked) and the circuit lets requests through."""
        return self.healthy is not False and self.breaker.available()

    def has_capacity(self) -> bool:
        return self.in_flight < self.max_concurrent

    async def call(self, params: CallParams, *, timeout_s: float | None = None) -> Generation:
        """One attempt; raises the client's ``PolicyError`` after recording it."""
        estimate = _token_estimate(params)
        await self.limiter.acquire(estimate)
        if not self.breaker.acquire():
            raise EndpointUnavailableError(f"{self.name}: circuit open")
        self.in_flight += 1
        self.requests += 1
        verdict = False
        try:
            generation = await self.client.generate(params, timeout_s=timeout_s)
            verdict = True
            self._succeeded(generation.total_ms)
            usage = generation.usage
            self.limiter.settle(estimate, usage.prompt_tokens + usage.completion_tokens)
            return generation
        except PolicyError as exc:
            verdict = True
            self._failed(exc)
            raise
        finally:
            self.in_flight -= 1
            if not verdict:  # cancelled from outside: no evidence either way
                self.breaker.release_probe()

    def _succeeded(self, total_ms: float) -> None:
        if self.breaker.state != "closed":
            log.info("endpoint.circuit_closed", endpoint=self.name)
        self.successes += 1
        self.latency.add(total_ms)
        self.breaker.record_success()

    def _failed(self, exc: PolicyError) -> None:
        kind = classify(exc)
        self.errors[kind] += 1
        self.last_error = str(exc)[:300]
        if kind not in RETRYABLE:
            # The server answered (a 4xx): it is alive, the request was wrong.
            self.breaker.record_success()
            return
        if kind == "throttled":
            # A 429 is backpressure from a live server, not a fault: the router waits for its
            # Retry-After; the circuit neither counts it nor lets it close an open circuit.
            self.breaker.release_probe()
            return
        was_open = self.breaker.state == "open"
        self.breaker.record_failure()
        if not was_open and self.breaker.state == "open":
            log.warning(
                "endpoint.circuit_open",
                endpoint=self.name,
                error_kind=kind,
                failures=self.breaker.consecutive_failures,
                error=self.last_error,
            )

    async def check_health(self) -> HealthStatus:
        """Probe readiness; a passing check also serves as the half-open circuit's probe."""
        status = await self.client.health()
        if status.ok != self.healthy and self.healthy is not None:
            event = "endpoint.healthy" if status.ok else "endpoint.unhealthy"
            log.warning(event, endpoint=self.name, reason=status.reason)
        self.healthy = status.ok
        self.max_model_len = status.max_model_len or self.max_model_len
        if not status.ok:
            self.last_error = status.reason[:300]
        elif self.breaker.state == "half_open" and self.breaker.acquire():
            log.info("endpoint.circuit_closed", endpoint=self.name, by="health")
            self.breaker.record_success()
        return status

    def statistics(self) -> EndpointStatistics:
        return EndpointStatistics(
            name=self.name,
            endpoint=self.client.endpoint,
            model=self.client.model,
            state=self._state(),
            in_flight=self.in_flight,
            max_concurrent=self.max_concurrent,
            requests=self.requests,
            successes=self.successes,
            errors=dict(self.errors),
            latency_p50_ms=self.latency.percentile(0.5),
            latency_p95_ms=self.latency.percentile(0.95),
            consecutive_failures=self.breaker.consecutive_failures,
            circuit_opened=self.breaker.times_opened,
            last_error=self.last_error,
            max_model_len=self.max_model_len,
            rate_limited_s=round(self.limiter.waited_s, 3),
        )

    def _state(self) -> str:
        circuit = self.breaker.state
        if circuit != "closed":
            return circuit
        return "unhealthy" if self.healthy is False else "healthy"


def _token_estimate(params: CallParams) -> int:
    """Tokens a call may use, for the TPM limit: ~4 characters a token plus the reserve."""
    chars = sum(len(m.get("content", "")) for m in params.messages or []) + len(params.prompt or "")
    return chars // 4 + (params.max_tokens or 0)
