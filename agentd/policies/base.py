"""The ``Policy`` protocol: what the episode runner asks of any policy (LLM or replay)."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from agentd.records import PolicyInfo, Task, Usage


class GenerateRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One step's question to a policy.

    ``messages`` is the chat prompt (OpenAI shape). ``task`` and ``step`` let a replay policy
    answer without a model; LLM policies ignore them. ``structured_output`` is passed through
    as vLLM's ``structured_outputs`` field (``{"regex": …}`` | ``{"json": …}`` | ``{"grammar": …}``
    | ``{"structural_tag": …}``) and is dropped for endpoints that do not support it.
    """

    messages: list[dict[str, str]]
    task: Task
    step: int
    episode: int = 0
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    structured_output: dict[str, Any] | None = None


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    """A policy's answer and what it cost."""

    text: str
    finish_reason: str = "stop"
    usage: Usage = msgspec.field(default_factory=Usage)
    model: str = ""
    endpoint: str = ""
    answered_by: str = ""  # actor or teacher name that produced the text (fallback is visible)
    ttft_ms: float | None = None
    total_ms: float = 0.0


class Policy(Protocol):
    """Anything that turns a prompt into a tagged model output."""

    @property
    def kind(self) -> str:
        """``reference`` | ``actor`` | ``teacher`` | ``instant`` …"""
        ...

    def info(self, request: GenerateRequest | None = None) -> PolicyInfo:
        """Provenance for the trajectory record (model, endpoint, seed, sampling)."""
        ...

    async def generate(self, request: GenerateRequest) -> Generation:
        """Answer one step; raises ``PolicyError`` when no answer can be had."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
