"""Fixtures for the policy tests: fake vLLM servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentd.testing.fake_vllm import FakeVLLM

from .helpers import MODEL


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(model=MODEL) as server:
        yield server


@pytest.fixture
def fake2() -> Iterator[FakeVLLM]:
    with FakeVLLM(model=MODEL) as server:
        yield server
