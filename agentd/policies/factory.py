"""Build a policy by name from the settings, and probe actors for ``agentd check``."""

from __future__ import annotations

from typing import Any

import anyio

from agentd.config import ActorConfig, Settings
from agentd.errors import ConfigError
from agentd.policies.base import Policy
from agentd.policies.client import OpenAIClient
from agentd.policies.pool import ActorPool
from agentd.policies.teacher import TeacherPolicy

POLICY_NAMES = ("actor", "teacher")


def build_policy(name: str, settings: Settings) -> Policy:
    """``actor`` → ``ActorPool``; ``teacher`` → ``TeacherPolicy``; else ``ConfigError``."""
    actors = settings.actors
    if name == "actor":
        if not actors.actors:
            raise ConfigError(f"{settings.agentd.files.actors}: no actors configured")
        return ActorPool(actors.actors, actors.client, actors.sampling, profiles=actors.profiles)
    if name == "teacher":
        teachers = actors.teachers
        return TeacherPolicy(
            teachers.primary,
            teachers.fallback,
            client_config=actors.client,
            sampling=teachers.sampling,
            env_file=settings.path(teachers.env_file),
            profiles=actors.profiles,
        )
    raise ConfigError(f"unknown policy {name!r}; one of {', '.join(POLICY_NAMES)}")


async def probe_actors(
    settings: Settings, *, timeout_s: float | None = None
) -> list[dict[str, Any]]:
    """Reachability of each configured actor (``/health`` + ``/v1/models``); never raises.

    One dict per actor, in config order: ``name, url, model, ready, detail, latency_ms``.
    """
    results: dict[str, dict[str, Any]] = {}
    async with anyio.create_task_group() as tg:
        for actor in settings.actors.actors:
            tg.start_soon(_probe, actor, settings, timeout_s, results)
    return [results[a.name] for a in settings.actors.actors]


async def _probe(
    actor: ActorConfig, settings: Settings, timeout_s: float | None, out: dict[str, dict[str, Any]]
) -> None:
    config = settings.actors.client
    client = OpenAIClient(actor.base_url, actor.served_model_name, config=config, name=actor.name)
    try:
        status = await client.health(timeout_s=timeout_s or config.connect_timeout_s)
    finally:
        await client.aclose()
    out[actor.name] = {
        "name": actor.name,
        "url": actor.base_url,
        "model": actor.served_model_name,
        "ready": status.ok,
        "detail": "ready" if status.ok else status.reason,
        "latency_ms": round(status.latency_ms, 1),
    }
