"""``Router``: spread requests over endpoints, retry what can be retried, fail over.

Each request goes to the usable endpoint (healthy, circuit not open) with the fewest requests
in flight; when every usable endpoint is at its concurrency cap the request waits for a slot
(bounded by its timeout). A retryable failure (connection, timeout, 429, 5xx, broken body)
moves to an endpoint not yet tried if there is one — at once, since a different server is not
the one that is struggling — else backs off exponentially with jitter before trying again.
A 4xx other than 429 is raised at once: the same request would fail the same way anywhere.
A 429 is backpressure: the request waits for the server's ``Retry-After`` (else the backoff),
which uses up no retry but at most ``throttle_max_wait_s`` of waiting per request.
"""

from __future__ import annotations

import anyio

from agentd.config import ClientConfig
from agentd.errors import EndpointTimeoutError, EndpointUnavailableError, PolicyError
from agentd.logging import get_logger
from agentd.policies.base import Generation
from agentd.policies.endpoint import Endpoint, EndpointStatistics
from agentd.policies.resilience import Sleep, backoff, classify, is_retryable
from agentd.policies.wire import CallParams

log = get_logger(__name__)


class Router:
    """Routing, retries and health checks over a fixed list of endpoints."""

    def __init__(self, endpoints: list[Endpoint], config: ClientConfig) -> None:
        if not endpoints:
            raise ValueError("a router needs at least one endpoint")
        self.endpoints = endpoints
        self.config = config
        self.sleep: Sleep = anyio.sleep  # injectable: tests wait on events, not the wall clock
        self._changed: anyio.Event | None = None  # created lazily: needs a running loop

    async def generate(self, params: CallParams, *, timeout_s: float | None = None) -> Generation:
        """Answer from some endpoint, or raise the last failure once retries are spent."""
        tried: set[str] = set()
        failures, throttled_s = 0, 0.0
        while True:
            endpoint = await self._pick(tried, timeout_s)
            try:
                return await self._call(endpoint, params, timeout_s)
            except PolicyError as exc:
                if classify(exc) == "throttled":
                    wait = self._throttle_wait(exc, throttled_s)
                    throttled_s += wait
                elif not is_retryable(exc) or failures >= self.config.max_retries:
                    raise
                else:
                    wait = self._backoff(failures)
                    failures += 1
                log.warning("policy.retry", endpoint=endpoint.name, attempt=failures,
                            error_kind=classify(exc), wait_s=round(wait, 3),
                            error=str(exc)[:200])
                if not self._untried_usable(tried | {endpoint.name}):
                    await self.sleep(wait)
                tried.add(endpoint.name)

    def _throttle_wait(self, exc: PolicyError, waited_s: float) -> float:
        """How long to wait after a 429; re-raise it once the waiting budget is spent."""
        hinted = getattr(exc, "retry_after_s", None)
        wait = hinted if hinted is not None else self._backoff(3)
        if waited_s + wait > self.config.throttle_max_wait_s:
            raise exc
        return float(wait)

    async def _call(
        self, endpoint: Endpoint, params: CallParams, timeout_s: float | None
    ) -> Generation:
        try:
            return await endpoint.call(params, timeout_s=timeout_s)
        finally:
            self.notify()  # a slot was freed (or a circuit changed): wake waiting requests

    def _backoff(self, attempt: int) -> float:
        return backoff(attempt, base_s=self.config.backoff_base_s, max_s=self.config.backoff_max_s)

    def _untried_usable(self, tried: set[str]) -> bool:
        return any(e.usable() and e.name not in tried for e in self.endpoints)

    async def _pick(self, tried: set[str], timeout_s: float | None) -> Endpoint:
        chosen = self._choose(tried)
        if chosen is not None:
            return chosen
        limit = timeout_s or self.config.timeout_s
        try:
            with anyio.fail_after(limit):
                while chosen is None:
                    if self._changed is None:
                        self._changed = anyio.Event()
                    await self._changed.wait()
                    chosen = self._choose(tried)
        except TimeoutError:
            raise EndpointTimeoutError(f"no endpoint had a free slot within {limit:g}s") from None
        return chosen

    def _choose(self, tried: set[str]) -> Endpoint | None:
        """The least-loaded usable endpoint with a free slot; ``None`` to wait for one."""
        usable = [e for e in self.endpoints if e.usable()]
        if not usable:
            raise EndpointUnavailableError(f"no endpoint available: {self.summary()}")
        fresh = [e for e in usable if e.name not in tried] or usable
        free = [e for e in fresh if e.has_capacity()]
        if not free:
            return None
        # Ties go to the endpoint that has served least, so idle actors share the load.
        return min(free, key=lambda e: (e.in_flight / e.max_concurrent, e.requests))

    def notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def summary(self) -> str:
        return ", ".join(f"{e.name}={e.statistics().state}" for e in self.endpoints)

    # ------------------------------------------------------------ health

    async def check_health(self) -> None:
        """Check every endpoint concurrently, once."""
        async with anyio.create_task_group() as tg:
            for endpoint in self.endpoints:
                tg.start_soon(endpoint.check_health)
        self.notify()

    async def run_health(self) -> None:
        """Check health every ``health_interval_s`` until cancelled (the daemon's task group)."""
        while True:
            await self.check_health()
            await anyio.sleep(self.config.health_interval_s)

    def statistics(self) -> tuple[EndpointStatistics, ...]:
        return tuple(e.statistics() for e in self.endpoints)

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.aclose()
