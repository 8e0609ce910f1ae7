"""Factories for realistic trajectory records (every nested field filled)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agentd.records import TrajectoryRecord
from agentd.testing.samples import sample_episode, sample_record


@pytest.fixture
def make_record() -> Callable[..., TrajectoryRecord]:
    """``make_record(run_id, task_id, episode, step, final=..., reward=Reward(...))``."""
    return sample_record


@pytest.fixture
def make_episode() -> Callable[..., list[TrajectoryRecord]]:
    """``make_episode(run_id, task_id, episode, steps=3)``: the last step a verified submit."""
    return sample_episode
