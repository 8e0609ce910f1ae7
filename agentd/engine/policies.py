"""The engine's policies by name, each built once with what goes with it.

A policy's connection pool is shared by every episode that uses it, so it is built on first use
and kept. With it the registry keeps the policy's health task (it probes ``/health`` and
``/v1/models`` and closes circuits), its token counter (the actors' own ``/tokenize`` when
there are actors, else the engine's default) and its few-shot examples (teachers). Episodes see
it through ``episode.wiring.PolicySource``.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from agentd.config import Settings
from agentd.datasets import tasks_path
from agentd.episode.fewshot import load_examples
from agentd.episode.prompts import FewShotExample
from agentd.policies.base import Policy
from agentd.policies.reference import ReferencePolicy
from agentd.state import TokenCounter
from agentd.state.counters import counter_for


class PolicyRegistry:
    """Name → policy, its health task, its token counter and its few-shot examples."""

    def __init__(self, settings: Settings, default_counter: TokenCounter) -> None:
        self.settings = settings
        self._default_counter = default_counter
        self._policies: dict[str, Policy] = {}
        self._counters: dict[str, TokenCounter] = {}
        self._few_shot: dict[str, list[FewShotExample]] = {}
        self._http: httpx.AsyncClient | None = None
        self._tg: TaskGroup | None = None

    def start(self, tg: TaskGroup) -> None:
        """Health tasks of the policies built from now on run in ``tg``."""
        self._tg = tg

    async def policy(self, name: str) -> Policy:
        """The policy for ``name``, built on first use."""
        if name not in self._policies:
            await self._build(name)
        return self._policies[name]

    def counter(self, name: str) -> TokenCounter:
        return self._counters.get(name, self._default_counter)

    def few_shot(self, name: str) -> list[FewShotExample] | None:
        return self._few_shot.get(name)

    def built(self, name: str) -> Policy | None:
        """The policy for ``name`` if an episode has used it, else None."""
        return self._policies.get(name)

    def statistics(self) -> dict[str, Any]:
        """Each built policy's own statistics (per-actor state, latency, errors, cost)."""
        out: dict[str, Any] = {}
        for name, policy in self._policies.items():
            stats = getattr(policy, "statistics", None)
            out[name] = stats() if callable(stats) else {"kind": policy.kind}
        return out

    async def aclose(self) -> None:
        for policy in self._policies.values():
            await policy.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def _build(self, name: str) -> None:
        if name == "reference":
            self._policies[name] = ReferencePolicy()
            return
        from agentd.policies.factory import build_policy

        # Kept before the checks below: a failed first check must not leave a second health
        # task behind on the next try.
        policy = self._policies[name] = build_policy(name, self.settings)
        health = getattr(policy, "run_health", None)
        if health is not None and self._tg is not None:
            self._tg.start_soon(health)
        if name == "actor" and self.settings.actors.actors:
            # One health pass first: it learns each actor's real max_model_len, which the
            # first prompt must already fit.
            check = getattr(policy, "check_health", None)
            if check is not None:
                await check()
            self._counters[name] = await self._actor_counter()
        if name == "teacher":
            n = self.settings.teacher_prompts.few_shot
            self._few_shot[name] = await anyio.to_thread.run_sync(
                load_examples, tasks_path(self.settings, "train"), n)

    async def _actor_counter(self) -> TokenCounter:
        """Exact token counts from the actors' own tokenizer (vLLM ``/tokenize``)."""
        actor = self.settings.actors.actors[0]
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return await counter_for(self.settings.agentd.state, base_url=actor.base_url,
                                 model=actor.served_model_name, client=self._http)
