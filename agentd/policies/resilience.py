"""Failure handling shared by the actor pool and the teachers.

``classify`` names what went wrong, ``is_retryable`` says whether another attempt can help
(connection failures, timeouts, 429, 5xx and broken bodies can; any other 4xx is the
request's fault and never will, least of all a prompt over the context window), ``backoff``
spaces attempts out, ``CircuitBreaker`` stops hammering an endpoint that keeps failing, and
``LatencyWindow`` keeps recent latencies for p50/p95.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from agentd.errors import (
    EndpointResponseError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    PolicyError,
    PromptTooLongError,
)

ErrorKind = Literal[
    "connect", "timeout", "throttled", "server", "malformed", "client", "prompt_too_long", "other"
]
CircuitState = Literal["closed", "open", "half_open"]
Sleep = Callable[[float], Awaitable[None]]
RETRYABLE: frozenset[str] = frozenset({"connect", "timeout", "throttled", "server", "malformed"})
HTTP_TOO_MANY = 429
HTTP_SERVER = 500
_BY_TYPE: dict[type[PolicyError], ErrorKind] = {
    PromptTooLongError: "prompt_too_long",  # never retried: it overflows the same window again
    EndpointUnavailableError: "connect",
    EndpointTimeoutError: "timeout",
}


def classify(exc: PolicyError) -> ErrorKind:
    """The error-count bucket for ``exc`` (also the key in ``ActorStatistics.errors``)."""
    by_type = next((kind for t, kind in _BY_TYPE.items() if isinstance(exc, t)), None)
    if by_type is not None:
        return by_type
    if not isinstance(exc, EndpointResponseError):
        return "other"
    if exc.status is None or exc.status == 200:
        return "malformed"  # a dropped connection mid-body or a body that breaks the protocol
    if exc.status == HTTP_TOO_MANY:
        return "throttled"
    return "server" if exc.status >= HTTP_SERVER else "client"


def is_retryable(exc: PolicyError) -> bool:
    return classify(exc) in RETRYABLE


def backoff(attempt: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped at ``max_s``."""
    cap = min(max_s, base_s * (2**attempt))
    return float(cap / 2 + random.uniform(0, cap / 2))


class CircuitBreaker:
    """closed → (``threshold`` consecutive failures) → open → (``reset_s``) → half_open.

    In half-open exactly one caller is let through as the probe: its success closes the
    circuit, its failure opens it again for another ``reset_s``. A probe that is abandoned
    (cancelled) hands the slot back so the next caller can probe.
    """

    def __init__(
        self, *, threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._state: CircuitState = "closed"
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self.times_opened = 0

    @property
    def state(self) -> CircuitState:
        """The state as a caller would see it now (open turns half-open once reset_s passed)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return self._state

    def available(self) -> bool:
        """Would ``acquire`` let a request through right now (without taking the probe)?"""
        if self._state == "half_open":
            return False  # the probe is already out
        return self.state != "open"

    def acquire(self) -> bool:
        """Take permission for one request; in half-open this makes the caller the probe."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._state == "open":
            self._state = "half_open"
            return True
        return False

    def record_success(self) -> None:
        self._state = "closed"
        self.consecutive_failures = 0

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self._state == "half_open" or self.consecutive_failures >= self.threshold:
            self._open()

    def release_probe(self) -> None:
        """The probe ended without a verdict: let the next caller probe."""
        if self._state == "half_open":
            self._state = "open"
            self._opened_at = self._clock() - self.reset_s

    def _open(self) -> None:
        if self._state != "open":
            self.times_opened += 1
        self._state = "open"
        self._opened_at = self._clock()


class LatencyWindow:
    """The last ``size`` latencies (ms) of successful requests; percentiles on demand."""

    def __init__(self, size: int = 512) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._values.append(ms)

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        ordered = sorted(self._values)
        index = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
        return round(ordered[index], 1)
