"""The ``Policy`` protocol: what the episode runner asks of any policy (LLM or replay)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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

    text: str  # the answer: what the protocol parser reads
    reasoning: str = ""  # the model's own reasoning, kept apart from the answer
    native_reasoning: bool = False  # the endpoint reasons natively: <think> in text is optional
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


@runtime_checkable
class PromptLimits(Protocol):
    """A policy that knows its endpoint's context window and can count a prompt's tokens.

    The runner uses it to make the whole prompt plus the reserved answer fit
    (``episode.fit``); a policy without it (the reference replay) is never limited.
    """

    def context_window(self) -> int | None:
        """Tokens of context, or ``None`` when unknown (then nothing is limited)."""
        ...

    def reserved_tokens(self) -> int:
        """Tokens kept free for the answer (the configured ``max_tokens``)."""
        ...

    async def count_chat(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens of ``messages`` as the endpoint will count them."""
        ...


def estimate_chat_tokens(messages: list[dict[str, str]]) -> int:
    """A deliberately high token count for endpoints without ``/tokenize``: code runs about
    3–4 characters a token, so 2.5 leaves a margin; 8 more per message for its template."""
    return sum(int(len(m.get("content", "")) / 2.5) + 8 for m in messages) + 8
