"""Where each provider puts the model's own reasoning, and the errors some send with HTTP 200.

Reasoning is data, kept apart from the answer the protocol parser reads:

* vLLM with ``--reasoning-parser`` returns it as ``message.reasoning`` (``reasoning_content``
  before vLLM 0.11, still accepted); GLM-4.6 (Z.ai) as ``message.reasoning_content``;
* MiniMax M2 with ``reasoning_split: true`` as ``message.reasoning_details``, a list of
  ``{"type": "reasoning.text", "text": …}`` parts; without it, as a leading
  ``<think>…</think>`` inside ``content`` — as does Qwen3 with thinking on and no parser.

Streams carry the same fields in each chunk's ``delta``.

Errors: OpenAI-style servers sometimes answer HTTP 200 with ``{"error": {...}}`` and no
choices; MiniMax answers HTTP 200 with ``base_resp: {status_code, status_msg}`` and a non-zero
code. Both become the HTTP status they stand for, so retries and circuits treat them as what
they are (a rate limit is a 429, a bad key a 401) instead of a "malformed" body.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from agentd.errors import EndpointResponseError, PromptTooLongError

_FIELDS = ("reasoning", "reasoning_content")
_OPEN, _CLOSE = "<think>", "</think>"
_WS = " \t\r\n"
# The words vLLM, OpenAI and the hosted teachers use when a prompt does not fit.
_CONTEXT = re.compile(
    r"maximum context length|context length|context window|max_model_len|"
    r"maximum model length|prompt is too long|too many (input )?tokens",
    re.IGNORECASE,
)
# MiniMax base_resp codes (platform docs, "error codes") and the HTTP status each stands for.
_MINIMAX_STATUS = {1000: 500, 1001: 504, 1002: 429, 1004: 401, 1008: 402, 1013: 500,
                   1039: 429, 2013: 400, 2049: 401}


def message_reasoning(message: dict[str, Any]) -> str:
    """The reasoning a chat ``message`` (or stream ``delta``) carries in its own fields."""
    for name in _FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return _details_text(message.get("reasoning_details"))


def _details_text(details: Any) -> str:
    if not isinstance(details, list):
        return ""
    parts = [d.get("text") for d in details if isinstance(d, dict)]
    return "".join(p for p in parts if isinstance(p, str))


def split_leading_think(content: str) -> tuple[str, str]:
    """``(reasoning, answer)``: a native ``<think>…</think>`` that opens ``content`` and the rest.

    Content without a closed leading block is all answer (the parser reports what is wrong).
    """
    start = len(content) - len(content.lstrip(_WS))
    if not content.startswith(_OPEN, start):
        return "", content
    end = content.find(_CLOSE, start)
    if end < 0:
        return "", content
    reasoning = content[start + len(_OPEN):end].strip(_WS)
    return reasoning, content[end + len(_CLOSE):].lstrip(_WS)


def raise_for_error_body(data: Any, *, style: Literal["openai", "minimax"], name: str) -> None:
    """Raise the error a 200 body reports (see the module docstring); return if it is none."""
    if not isinstance(data, dict):
        return
    if style == "minimax":
        _raise_minimax(data.get("base_resp"), name)
    error = data.get("error")
    if error is not None and not data.get("choices"):
        inner = error if isinstance(error, dict) else {"message": str(error)}
        message = str(inner.get("message") or inner)[:500]
        code = inner.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 502
        raise http_error(name, status, message)


def _raise_minimax(base: Any, name: str) -> None:
    if not isinstance(base, dict):
        return
    code = base.get("status_code")
    if not isinstance(code, int) or code == 0:
        return
    message = f"MiniMax {code}: {str(base.get('status_msg') or '')[:300]}"
    raise http_error(name, _MINIMAX_STATUS.get(code, 400), message)


def http_error(
    name: str, status: int, message: str, *, retry_after_s: float | None = None
) -> EndpointResponseError | PromptTooLongError:
    """The exception for an error answer; a context-length 400 is ``PromptTooLongError``."""
    text = f"{name}: HTTP {status}: {message}"
    if status in (400, 413, 422) and _CONTEXT.search(message):
        return PromptTooLongError(text)
    return EndpointResponseError(text, status=status, retry_after_s=retry_after_s)
