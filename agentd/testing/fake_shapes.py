"""JSON shapes of vLLM's OpenAI server (0.1x), for the fake in ``fake_vllm``.

Field names and nesting follow ``vllm.entrypoints.openai`` protocol models, including vLLM's
extensions (``token_ids`` / ``prompt_token_ids`` with ``return_token_ids``, ``stop_reason``,
errors as ``{"error": {"message", "type", "param", "code"}}``). Tokens are whitespace-bounded
pieces with stable ids, which is enough for clients that only count and echo them.
"""

from __future__ import annotations

import re
import time
import uuid
import zlib
from typing import Any

FINGERPRINT = "vllm-0.32.0-fake"
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


def usage(prompt_ids: list[int], completion: list[str]) -> dict[str, Any]:
    return {
        "prompt_tokens": len(prompt_ids),
        "completion_tokens": len(completion),
        "total_tokens": len(prompt_ids) + len(completion),
        "prompt_tokens_details": None,
    }


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

    def __init__(self, body: dict[str, Any], model: str, text: str, finish_reason: str) -> None:
        self.body = body
        self.model = model
        self.chat = "messages" in body
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
            "usage": usage(self.prompt_ids, self.toks),
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
        toks: list[str | None] = list(self.toks) or [None]
        for i, tok in enumerate(toks):
            finish = self.finish_reason if i == len(toks) - 1 else None
            out.append(self._envelope([self._delta(tok, finish, first=i == 0)]))
        if (self.body.get("stream_options") or {}).get("include_usage"):
            tail = {"usage": usage(self.prompt_ids, self.toks), "system_fingerprint": FINGERPRINT}
            out.append(self._envelope([]) | tail)
        return out

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
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
