"""The OpenAI-compatible wire format as vLLM speaks it: request bodies and response parsing.

Pure functions, no I/O, so the client stays about transport and the shapes are testable alone.
A server's JSON is untrusted: every field is type-checked and anything off raises
``EndpointResponseError`` instead of a ``KeyError`` deep in the step loop.

vLLM specifics used here: ``structured_outputs`` ({regex | json | grammar | choice |
structural_tag}) for constrained decoding — the removed ``guided_*`` fields are refused because
current vLLM silently ignores them — and ``return_token_ids`` (prompt ids at the top level for
chat, on the choice for completions; completion ids as ``token_ids`` on the choice).
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentd.config import SamplingConfig
from agentd.errors import EndpointResponseError, PolicyError
from agentd.policies.base import GenerateRequest
from agentd.policies.reasoning import message_reasoning
from agentd.profiles import ProviderProfile

STRUCTURED_KINDS = frozenset({"regex", "json", "grammar", "choice", "structural_tag"})


class CallParams(msgspec.Struct, frozen=True, kw_only=True):
    """One generation call: chat ``messages`` or a raw ``prompt``, plus sampling."""

    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    structured_output: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None  # other server-specific fields (e.g. vLLM ``ignore_eos``)

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


class Parsed(msgspec.Struct, kw_only=True):
    """What the client keeps from one response (or one accumulated stream)."""

    text: str = ""
    reasoning: str = ""  # the model's own reasoning, from the provider's reasoning fields
    finish_reason: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None


def params_from_request(
    request: GenerateRequest, sampling: SamplingConfig, profile: ProviderProfile | None = None
) -> CallParams:
    """Merge a step's request over the section's sampling over the profile's recommendation.

    The request wins where it is set, then the section, then the profile. ``seed`` is dropped
    for endpoints that do not honour it, so the record never claims a seed that was ignored.
    """
    structured = request.structured_output if sampling.structured_output else None
    recommended = profile.sampling if profile is not None else None
    seed = _first(request.seed, sampling.seed)
    extra: dict[str, Any] = {}
    if profile is not None:
        extra = {**profile.extra_body, **profile.sampling.body_fields()}
        seed = seed if profile.honours_seed else None
    return CallParams(
        messages=request.messages,
        temperature=_first(request.temperature, sampling.temperature,
                           recommended.temperature if recommended else None),
        top_p=_first(request.top_p, sampling.top_p, recommended.top_p if recommended else None),
        max_tokens=_first(request.max_tokens, sampling.max_tokens),
        seed=seed,
        stop=request.stop,
        structured_output=structured,
        extra=extra or None,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def sampling_dict(params: CallParams) -> dict[str, Any]:
    """The sampling part of a call, for ``PolicyInfo.sampling`` in the trajectory record."""
    fields = ("temperature", "top_p", "max_tokens", "seed", "stop")
    out = {name: getattr(params, name) for name in fields if getattr(params, name) is not None}
    out.update(params.extra or {})  # top_k, min_p, chat_template_kwargs, thinking …
    if params.structured_output:
        out["structured_output"] = sorted(params.structured_output)
    return out


# ---------------------------------------------------------------- request bodies


def build_body(
    params: CallParams,
    *,
    model: str,
    stream: bool,
    vllm: bool,
    return_token_ids: bool = False,
    logprobs: bool = False,
    max_tokens_field: str = "max_tokens",
) -> dict[str, Any]:
    """The JSON body for ``/chat/completions`` (messages) or ``/completions`` (prompt)."""
    body: dict[str, Any] = {"model": model}
    if params.is_chat:
        body["messages"] = params.messages
    else:
        body["prompt"] = params.prompt or ""
    for name in ("temperature", "top_p", "max_tokens", "seed", "stop"):
        value = getattr(params, name)
        if value is not None:
            body[max_tokens_field if name == "max_tokens" else name] = value
    _add_extensions(body, params, vllm=vllm, return_token_ids=return_token_ids)
    if logprobs:
        body["logprobs"] = True if params.is_chat else 0
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _add_extensions(
    body: dict[str, Any], params: CallParams, *, vllm: bool, return_token_ids: bool
) -> None:
    extra = params.extra or {}
    if any(key.startswith("guided_") for key in extra):
        raise PolicyError("guided_* fields are ignored by current vLLM; use structured_output")
    body.update(extra)
    if not vllm:
        return  # hosted teachers reject or ignore vLLM's extensions
    if params.structured_output:
        unknown = set(params.structured_output) - STRUCTURED_KINDS
        if unknown:
            raise PolicyError(f"structured_output: unknown kind(s) {sorted(unknown)}")
        body["structured_outputs"] = params.structured_output
    if return_token_ids:
        body["return_token_ids"] = True


# ---------------------------------------------------------------- responses


def bad(what: str) -> EndpointResponseError:
    """A 200 whose body is not what the protocol promises."""
    return EndpointResponseError(f"malformed response: {what}", status=200)


def decode_json(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise bad("body is not JSON") from None


def error_message(raw: bytes) -> str:
    """The message of vLLM's ``{"error": {"message": …}}`` (or older flat) error body."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:500]
        if isinstance(inner, str):
            return inner[:500]
    return str(data)[:200]


def parse_response(data: Any, *, chat: bool) -> Parsed:
    """A non-streaming ``chat.completion`` or ``text_completion`` body."""
    choice = _first_choice(data)
    parsed = Parsed(model=_str(data.get("model")), finish_reason=_str(choice.get("finish_reason")))
    if chat:
        parsed.text, parsed.reasoning = _chat_text(choice.get("message"))
    else:
        parsed.text = _text(choice.get("text"))
    _apply_usage(parsed, data.get("usage"))
    prompt_ids = data.get("prompt_token_ids") if chat else choice.get("prompt_token_ids")
    parsed.prompt_token_ids = _ids(prompt_ids)
    parsed.completion_token_ids = _ids(choice.get("token_ids"))
    parsed.logprobs = _logprobs(choice.get("logprobs"), chat=chat)
    return parsed


def _first_choice(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad("top level is not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad("no choices")
    return choices[0]


def _chat_text(message: Any) -> tuple[str, str]:
    """``(content, reasoning)``: the answer and the reasoning the provider sent beside it."""
    if not isinstance(message, dict):
        raise bad("choice has no message")
    return _text(message.get("content")), message_reasoning(message)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad("text is not a string")
    return value


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _apply_usage(parsed: Parsed, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    parsed.prompt_tokens = _count(usage.get("prompt_tokens"))
    parsed.completion_tokens = _count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        parsed.cached_prompt_tokens = min(_count(details.get("cached_tokens")),
                                          parsed.prompt_tokens)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _ids(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return value
    return None


def _logprobs(value: Any, *, chat: bool) -> list[float] | None:
    if not isinstance(value, dict):
        return None
    if not chat:
        raw = value.get("token_logprobs")
        return (
            [float(v) for v in raw if isinstance(v, int | float)] if isinstance(raw, list) else None
        )
    content = value.get("content")
    if not isinstance(content, list):
        return None
    return [
        float(e["logprob"]) for e in content if isinstance(e, dict) and _is_num(e.get("logprob"))
    ]


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- streaming


class StreamAccumulator:
    """Folds SSE ``chat.completion.chunk`` / ``text_completion`` chunks into one ``Parsed``."""

    def __init__(self, *, chat: bool) -> None:
        self._chat = chat
        self._parts: list[str] = []
        self._reasoning: list[str] = []
        self._ids: list[int] = []
        self._logprobs: list[float] = []
        self.parsed = Parsed()
        self.first_text = False

    def feed(self, chunk: Any) -> bool:
        """Take one decoded chunk; True when it carried the first non-empty text."""
        if not isinstance(chunk, dict):
            raise bad("stream chunk is not an object")
        if "error" in chunk:  # vLLM reports failures after the 200 as an error event
            raise EndpointResponseError(
                f"error in stream: {error_message(msgspec.json.encode(chunk))}"
            )
        self.parsed.model = self.parsed.model or _str(chunk.get("model"))
        _apply_usage(self.parsed, chunk.get("usage"))
        if self._chat and self.parsed.prompt_token_ids is None:
            self.parsed.prompt_token_ids = _ids(chunk.get("prompt_token_ids"))
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return False  # the final usage-only chunk has no choices
        return self._feed_choice(choices[0])

    def _feed_choice(self, choice: Any) -> bool:
        if not isinstance(choice, dict):
            raise bad("stream choice is not an object")
        text = _delta_text(choice, chat=self._chat)
        self._parts.append(text)
        delta = choice.get("delta")
        if self._chat and isinstance(delta, dict):
            self._reasoning.append(message_reasoning(delta))
        self._ids.extend(_ids(choice.get("token_ids")) or [])
        self._logprobs.extend(_logprobs(choice.get("logprobs"), chat=self._chat) or [])
        if not self._chat and self.parsed.prompt_token_ids is None:
            self.parsed.prompt_token_ids = _ids(choice.get("prompt_token_ids"))
        if isinstance(choice.get("finish_reason"), str):
            self.parsed.finish_reason = choice["finish_reason"]
        first = bool(text) and not self.first_text
        self.first_text = self.first_text or bool(text)
        return first

    def result(self) -> Parsed:
        self.parsed.text = "".join(self._parts)
        self.parsed.reasoning = "".join(self._reasoning)
        self.parsed.completion_token_ids = self._ids or None
        self.parsed.logprobs = self._logprobs or None
        return self.parsed


def _delta_text(choice: dict[str, Any], *, chat: bool) -> str:
    if not chat:
        return _text(choice.get("text"))
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        raise bad("stream choice has no delta")
    return _text(delta.get("content"))
