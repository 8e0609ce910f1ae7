"""Circuit breaker, backoff, error classification, env-file parsing (pure functions)."""

from __future__ import annotations

import pytest

from agentd.errors import (
    EndpointResponseError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    PolicyError,
)
from agentd.policies.envfile import lookup_key, parse_env
from agentd.policies.resilience import (
    CircuitBreaker,
    LatencyWindow,
    backoff,
    classify,
    is_retryable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestCircuitBreaker:
    def test_opens_after_threshold_consecutive_failures(self) -> None:
        """Failures below the threshold keep it closed; a success resets the count."""
        cb = CircuitBreaker(threshold=3, reset_s=10, clock=Clock())
        cb.record_failure()
        cb.record_failure()
        cb.record_success()
        cb.record_failure()
        assert cb.state == "closed"
        cb.record_failure()
        cb.record_failure()
        assert cb.state == "open" and not cb.acquire() and cb.times_opened == 1

    def test_half_open_lets_exactly_one_probe(self) -> None:
        """After reset_s the first acquire is the probe; others wait for its verdict."""
        clock = Clock()
        cb = CircuitBreaker(threshold=1, reset_s=10, clock=clock)
        cb.record_failure()
        clock.now = 10
        assert cb.state == "half_open" and cb.available()
        assert cb.acquire() and not cb.acquire() and not cb.available()
        cb.record_success()
        assert cb.state == "closed" and cb.acquire()

    def test_failed_probe_reopens_for_a_full_period(self) -> None:
        """A failing probe opens the circuit again from that moment."""
        clock = Clock()
        cb = CircuitBreaker(threshold=1, reset_s=10, clock=clock)
        cb.record_failure()
        clock.now = 10
        assert cb.acquire()
        cb.record_failure()
        clock.now = 19
        assert cb.state == "open"
        clock.now = 20
        assert cb.state == "half_open"

    def test_abandoned_probe_hands_the_slot_back(self) -> None:
        """A cancelled probe lets the next caller probe at once."""
        clock = Clock()
        cb = CircuitBreaker(threshold=1, reset_s=10, clock=clock)
        cb.record_failure()
        clock.now = 10
        assert cb.acquire()
        cb.release_probe()
        assert cb.acquire()


class TestClassify:
    @pytest.mark.parametrize(
        ("exc", "kind", "retry"),
        [
            (EndpointUnavailableError("x"), "connect", True),
            (EndpointTimeoutError("x"), "timeout", True),
            (EndpointResponseError("x", status=429), "throttled", True),
            (EndpointResponseError("x", status=503), "server", True),
            (EndpointResponseError("x", status=200), "malformed", True),
            (EndpointResponseError("x", status=None), "malformed", True),
            (EndpointResponseError("x", status=400), "client", False),
            (EndpointResponseError("x", status=404), "client", False),
            (PolicyError("x"), "other", False),
        ],
    )
    def test_kinds(self, exc: PolicyError, kind: str, retry: bool) -> None:
        """Each failure lands in its bucket; only transient ones are retryable."""
        assert classify(exc) == kind and is_retryable(exc) is retry

    def test_backoff_grows_with_jitter_and_is_capped(self) -> None:
        """Attempt n waits between half and all of min(max, base * 2**n)."""
        waits = [backoff(n, base_s=0.25, max_s=2.0) for n in range(6) for _ in range(50)]
        assert all(0.125 <= w <= 2.0 for w in waits)
        assert 1.0 <= max(backoff(5, base_s=0.25, max_s=2.0) for _ in range(50)) <= 2.0
        assert len({round(w, 6) for w in waits}) > 100

    def test_latency_percentiles(self) -> None:
        """p50/p95 come from the retained window; empty is None."""
        window = LatencyWindow(size=100)
        assert window.percentile(0.5) is None
        for v in range(1, 101):
            window.add(float(v))
        assert window.percentile(0.5) in (50.0, 51.0) and window.percentile(0.95) in (95.0, 96.0)


class TestEnvFile:
    def test_parses_the_dotenv_subset(self) -> None:
        """export, quotes, comments and blank lines; malformed lines are skipped."""
        text = "# c\n\nexport A=1\nB=\"two words\"\nC='x#y'\nD=plain # note\nnot a line\n"
        assert parse_env(text) == {"A": "1", "B": "two words", "C": "x#y", "D": "plain"}

    def test_environment_wins_over_file(self) -> None:
        """The process environment is consulted first; empty values count as missing."""
        assert lookup_key("K", env={"K": "env"}, file_values={"K": "file"}) == "env"
        assert lookup_key("K", env={"K": ""}, file_values={"K": "file"}) == "file"
        assert lookup_key("K", env={}, file_values={}) is None
