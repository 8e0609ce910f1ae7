"""build_policy and probe_actors from real settings."""

from __future__ import annotations

import pytest

from agentd.config import ActorsConfig, Settings
from agentd.errors import ConfigError
from agentd.policies.factory import build_policy, probe_actors
from agentd.policies.pool import ActorPool
from agentd.policies.teacher import TeacherPolicy
from agentd.testing.fake_vllm import FakeVLLM

from .helpers import actor


def with_actors(settings: Settings, *fakes: FakeVLLM) -> Settings:
    actors = ActorsConfig(actors=[actor(f, f"a{i}") for i, f in enumerate(fakes)])
    return settings.model_copy(update={"actors": actors})


class TestFactory:
    async def test_builds_actor_and_teacher(self, settings: Settings) -> None:
        """'actor' is an ActorPool over the configured actors, 'teacher' a TeacherPolicy."""
        pool = build_policy("actor", settings)
        teacher = build_policy("teacher", settings)
        assert isinstance(pool, ActorPool) and pool.kind == "actor"
        assert [s.name for s in pool.statistics().actors] == ["actor0", "actor1", "actor2"]
        assert isinstance(teacher, TeacherPolicy) and teacher.kind == "teacher"
        await pool.aclose()
        await teacher.aclose()

    def test_unknown_name_is_a_config_error(self, settings: Settings) -> None:
        """An unknown policy name is a ConfigError listing the known ones."""
        with pytest.raises(ConfigError, match="actor, teacher"):
            build_policy("oracle", settings)

    async def test_probe_reports_each_actor(
        self, settings: Settings, fake: FakeVLLM, fake2: FakeVLLM
    ) -> None:
        """One dict per actor; a down actor is ok=False with a reason, never an exception."""
        fake2.refuse_connections()
        results = await probe_actors(with_actors(settings, fake, fake2), timeout_s=1.0)
        assert [(r["name"], r["ready"]) for r in results] == [("a0", True), ("a1", False)]
        assert "cannot connect" in results[1]["detail"]
        assert results[0]["url"] == fake.base_url
