"""Make the whole prompt fit the endpoint's context window, with room for the answer.

``fit_prompt`` renders the prompt, counts it the way the endpoint will (vLLM's ``/tokenize``
with the chat template; a high estimate for hosted teachers) and, while prompt tokens plus the
reserved ``max_tokens`` exceed the context, shrinks what can shrink: first the files' character
budget (large files are then windowed, ``episode.windows``), then the few-shot examples. When
even the bare prompt does not fit, the step's error is ``PromptTooLongError`` (never retried).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agentd.episode.prompts import RenderedPrompt
from agentd.episode.windows import MIN_WINDOW_CHARS
from agentd.errors import PromptTooLongError

Render = Callable[[int, bool], RenderedPrompt]  # (files_chars, with_few_shot) -> prompt
Count = Callable[[list[dict[str, str]]], Awaitable[int]]
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Fitted:
    """The prompt that fits, its token count and what was given up for it."""

    prompt: RenderedPrompt
    tokens: int
    files_chars: int
    few_shot: bool


async def fit_prompt(
    render: Render, *, files_chars: int, context: int, reserve: int, count: Count
) -> Fitted:
    """The largest prompt within ``context - reserve`` tokens (see the module docstring)."""
    limit = context - reserve
    if limit <= 0:
        raise PromptTooLongError(
            f"max_tokens {reserve} leaves no room for a prompt in a context of {context}")
    chars, shots, tokens = files_chars, True, 0
    for _ in range(MAX_ATTEMPTS):
        prompt = render(chars, shots)
        tokens = await count(prompt.messages)
        if tokens <= limit:
            return Fitted(prompt, tokens, chars, shots)
        if chars > 0:
            chars = _smaller(chars, len(prompt.text), tokens, limit)
        elif shots:
            shots = False
        else:
            break
    raise PromptTooLongError(
        f"the prompt needs {tokens} tokens even without file contents; with max_tokens "
        f"{reserve} a context of {context} has room for {limit}")


def _smaller(chars: int, text_chars: int, tokens: int, limit: int) -> int:
    """The files budget cut by the excess, converted at this prompt's characters per token,
    with a margin so that the next count usually fits."""
    per_token = max(1.0, text_chars / max(tokens, 1))
    cut = int((tokens - limit) * per_token * 1.25) + 64
    smaller = chars - cut
    return smaller if smaller >= MIN_WINDOW_CHARS else 0
