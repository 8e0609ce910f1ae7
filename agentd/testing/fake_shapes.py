"""JSON shapes of vLLM's OpenAI server (0.1x) and of the hosted teachers, for ``fake_vllm``.

Field names and nesting follow ``vllm.entrypoints.openai`` protocol models, including vLLM's
extensions (``token_ids`` / ``prompt_token_ids`` with ``return_token_ids``, ``stop_reason``,
errors as ``{"error": {"message", "type", "param", "code"}}``). Tokens are whitespace-bounded
pieces with stable ids, which is enough for clients that only count and echo them.

A *flavour* is where a provider puts the model's native reasoning (a leading
``<think>…</think>`` the scripted model writes), as each documents it:

* ``vllm``          leaves it in ``content`` (vLLM without ``--reasoning-parser``; Qwen3 with
                    thinking off writes none);
* ``qwen3_parsed``  ``message.reasoning`` (vLLM docs, "Reasoning Outputs": the field was
                    ``reasoning_content`` before 0.11), the rest in ``content``;
* ``minimax``       in ``content`` unless the request sets ``reasoning_split``, then
                    ``message.reasoning_details: [{"type": "reasoning.text", "text": …}]``
                    (MiniMax platform docs, "OpenAI API compatible"); every body carries
                    ``base_resp: {status_code: 0}``;
* ``glm``           ``message.reasoning_content`` (Z.ai docs, "Thinking mode", chat
                    completion reference), unless the request sets ``thinking.type: disabled``.

Hosted flavours also report ``usage.prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import re
import time
import uuid
import zlib
from typing import Any

FINGERPRINT = "vllm-0.32.0-fake"
FLAVOURS = ("vllm", "qwen3_parsed", "minimax", "glm")
_PIECE = re.compile(r"\s*\S+|\s+")
ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


def pieces(text: str) -> list[str]:
    """The fake tokenizer: each word with its leading whitespace is one token."""
    return _PIECE.findall(text)


def token_id(piece: str) -> int:
    return 100 + zlib.crc32(piece.encode()) % 32000


def token_ids(text: str) -> list[int]:
    return [token_id(p) for p in pieces(text)]


def prompt_text(body: dict[str, Any]) -> str:
    """What the model would be prompted with: the raw prompt or the joined chat contents."""
    if "messages" in body:
        return "\n".join(f"<|{m.get('role')}|>{m.get('content')}" for m in body["messages"])
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "BadRequestError" if status < 500 else "InternalServerError")
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def models_body(model: str, max_model_len: int) -> dict[str, Any]:
    entry = {
        "id": model,
        "object": "model",
        "created": int(time.time()),
        "owned_by": "vllm",
        "root": f"/models/{model}",
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [],
    }
    return {"object": "list", "data": [entry]}


def usage(prompt_ids: list[int], completion: list[str], *, cached: int | None = None
          ) -> dict[str, Any]:
    details = None if cached is None else {"cached_tokens": cached}
    return {
        "prompt_tokens": len(prompt_ids),
        "completion_tokens": len(completion),
        "total_tokens": len(prompt_ids) + len(completion),
        "prompt_tokens_details": details,
    }


def split_native(text: str) -> tuple[str, str]:
    """A leading ``<think>…</think>`` and the rest, as the providers' reasoning parsers split."""
    stripped = text.lstrip()
    if not stripped.startswith("<think>") or "</think>" not in stripped:
        return "", text
    end = stripped.index("</think>")
    return stripped[len("<think>"):end].strip(), stripped[end + len("</think>"):].lstrip()


def _splits(flavour: str, body: dict[str, Any]) -> bool:
    if flavour == "minimax":
        return bool(body.get("reasoning_split"))
    if flavour == "glm":
        thinking = body.get("thinking") or {}
        return bool(thinking.get("type", "enabled") != "disabled")
    return flavour == "qwen3_parsed"


def reasoning_fields(flavour: str, reasoning: str) -> dict[str, Any]:
    """The message (or delta) fields that carry ``reasoning`` in ``flavour``."""
    if flavour == "minimax":
        return {"reasoning_details": [{"type": "reasoning.text", "id": "reasoning-text-1",
                                       "format": "MiniMax-response-v1", "index": 0,
                                       "text": reasoning}]}
    if flavour == "glm":
        return {"reasoning_content": reasoning}
    return {"reasoning": reasoning}


def flavour_error_200(flavour: str) -> dict[str, Any]:
    """A rate-limit error sent with HTTP 200, in the flavour's shape."""
    if flavour == "minimax":
        return {"id": "", "choices": None,
                "base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded(RPM)"}}
    return error_body(429, "rate limit exceeded")


def _logprobs(toks: list[str], *, chat: bool) -> dict[str, Any]:
    values = [-0.01 * (i + 1) for i in range(len(toks))]
    if chat:
        return {
            "content": [
                {"token": t, "logprob": v, "bytes": list(t.encode()), "top_logprobs": []}
                for t, v in zip(toks, values, strict=True)
            ]
        }
    offsets = [sum(len(t) for t in toks[:i]) for i in range(len(toks))]
    return {
        "text_offset": offsets,
        "token_logprobs": values,
        "tokens": toks,
        "top_logprobs": [{} for _ in toks],
    }


class Completion:
    """One request's answer: its tokens, why it stopped, and the bodies that carry it."""

    def __init__(self, body: dict[str, Any], model: str, text: str, finish_reason: str,
                 flavour: str = "vllm") -> None:
        self.body = body
        self.model = model
        self.chat = "messages" in body
        self.flavour = flavour
        reasoning = ""
        if self.chat and _splits(flavour, body):
            reasoning, text = split_native(text)
        self.reasoning = reasoning
        self.reasoning_toks = pieces(reasoning)
        self.toks = pieces(text)
        self.finish_reason = finish_reason
        self.prompt_ids = token_ids(prompt_text(body))
        self.id = f"{'chatcmpl' if self.chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.want_ids = bool(body.get("return_token_ids"))
        self.want_logprobs = body.get("logprobs") is not None and body["logprobs"] is not False

    def response(self) -> dict[str, Any]:
        """The non-streaming ``chat.completion`` / ``text_completion`` body."""
        text = "".join(self.toks)
        choice = self._choice(self.toks, self.finish_reason)
        top = self._envelope([choice]) | {
            "usage": self._usage(),
            "service_tier": None,
            "system_fingerprint": FINGERPRINT,
            "kv_transfer_params": None,
        }
        if self.chat:
            choice["message"] = {
                "role": "assistant",
                "content": text,
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "reasoning": None,
            }
            if self.reasoning:
                choice["message"] |= reasoning_fields(self.flavour, self.reasoning)
            top |= {
                "object": "chat.completion",
                "prompt_logprobs": None,
                "prompt_token_ids": self.prompt_ids if self.want_ids else None,
            }
        else:
            choice |= {
                "text": text,
                "prompt_logprobs": None,
                "prompt_token_ids": self.prompt_ids if self.want_ids else None,
            }
        return top

    def chunks(self) -> list[dict[str, Any]]:
        """The SSE chunks of the same answer, one token per chunk, as vLLM streams them."""
        out: list[dict[str, Any]] = []
        if self.chat:  # vLLM opens a chat stream with the role and the prompt's token ids
            first = self._choice([], None) | {"delta": {"role": "assistant", "content": ""}}
            head = self._envelope([first])
            head["prompt_token_ids"] = self.prompt_ids if self.want_ids else None
            out.append(head)
        for piece in self.reasoning_toks:  # reasoning streams first, in its own delta field
            part = self._choice([piece], None) | {
                "delta": reasoning_fields(self.flavour, piece)}
            out.append(self._envelope([part]))
        toks: list[str | None] = list(self.toks) or [None]
        for i, tok in enumerate(toks):
            finish = self.finish_reason if i == len(toks) - 1 else None
            out.append(self._envelope([self._delta(tok, finish, first=i == 0)]))
        if (self.body.get("stream_options") or {}).get("include_usage"):
            tail = {"usage": self._usage(), "system_fingerprint": FINGERPRINT}
            out.append(self._envelope([]) | tail)
        return out

    def _usage(self) -> dict[str, Any]:
        hosted = self.flavour in ("minimax", "glm")
        # Hosted APIs cache repeated prefixes; say half the prompt came from the cache.
        return usage(self.prompt_ids, self.reasoning_toks + self.toks,
                     cached=len(self.prompt_ids) // 2 if hosted else None)

    def _delta(self, tok: str | None, finish: str | None, *, first: bool) -> dict[str, Any]:
        choice = self._choice([tok] if tok is not None else [], finish)
        if self.chat:
            choice["delta"] = {"content": tok or ""}
        else:
            choice["text"] = tok or ""
            if first and self.want_ids:
                choice["prompt_token_ids"] = self.prompt_ids
        return choice

    def _choice(self, toks: list[str], finish: str | None) -> dict[str, Any]:
        lp = _logprobs(toks, chat=self.chat) if self.want_logprobs and toks else None
        ids = [token_id(t) for t in toks] if self.want_ids else None
        return {
            "index": 0,
            "finish_reason": finish,
            "stop_reason": None,
            "logprobs": lp,
            "token_ids": ids,
        }

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        envelope = {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.flavour == "minimax":
            envelope["base_resp"] = {"status_code": 0, "status_msg": ""}
        return envelope
