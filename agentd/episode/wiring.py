"""What an ``EpisodeRunner`` is wired with: its configuration and the engine's parts, typed.

The runner depends on these Protocols, never on the engine: ``engine.policies.PolicyRegistry``
is a ``PolicySource``, ``engine.commit.StepCommitter`` a ``StepCommitter``, the engine's drain
event a ``StopSignal``. Nothing here calls back up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agentd.config import PromptTemplates, SamplingConfig, Settings, StateConfig
from agentd.episode.lease import Lease
from agentd.episode.prompts import FewShotExample
from agentd.policies.base import Policy
from agentd.records import TrajectoryRecord
from agentd.state import State, TokenCounter


class PolicySource(Protocol):
    """The engine's policies as an episode needs them (``engine.policies.PolicyRegistry``)."""

    async def policy(self, name: str) -> Policy: ...

    def counter(self, name: str) -> TokenCounter: ...

    def few_shot(self, name: str) -> list[FewShotExample] | None: ...


class StepCommitter(Protocol):
    """Where a finished step goes: state, record and queue progress, exactly once."""

    async def commit(self, lease: Lease, step: int, state: State, version: int,
                     record: TrajectoryRecord, files: dict[str, str] | None,
                     done: bool) -> object: ...


class StopSignal(Protocol):
    """Set when the engine drains (``anyio.Event``)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class EpisodeConfig:
    """The part of the configuration an episode reads, fixed for the runner's lifetime."""

    max_steps: int
    step_timeout_s: float
    llm_timeout_s: float
    state: StateConfig
    prompts: PromptTemplates
    teacher_prompts: PromptTemplates
    sampling: SamplingConfig
    config_hash: str
    ast_grep_version: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, *, ast_grep_version: str = "") -> EpisodeConfig:
        episodes = settings.agentd.episodes
        return cls(max_steps=episodes.max_steps, step_timeout_s=episodes.step_timeout_s,
                   llm_timeout_s=episodes.llm_timeout_s, state=settings.agentd.state,
                   prompts=settings.prompts, teacher_prompts=settings.teacher_prompts,
                   sampling=settings.actors.sampling, config_hash=settings.config_hash,
                   ast_grep_version=ast_grep_version)
