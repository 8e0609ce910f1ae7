"""Provider profiles: what each kind of OpenAI-compatible endpoint needs and sends back.

A profile (``configs/vllm_actors.yaml: profiles``) names, for one kind of endpoint:

* ``kind``            ``vllm`` (our actors), ``minimax``, ``zai`` (GLM) or ``openai`` (any other);
* ``extra_body``      provider fields merged into every request body (``chat_template_kwargs``,
                      ``thinking``, ``reasoning_split`` …);
* ``sampling``        the sampling the model's authors recommend (``top_k``, ``min_p`` … travel
                      as body fields); a section's ``sampling`` overrides it field by field;
* ``reasoning``       where the model's own reasoning comes back: ``none`` (it does not reason
                      natively; the protocol's ``<think>`` is its only thinking), ``in_content``
                      (a leading native ``<think>…</think>`` in ``content``) or ``field``
                      (``reasoning_content`` / ``reasoning`` / ``reasoning_details``);
* ``errors``          how failures look: ``openai`` (``{"error": {...}}``, also under HTTP 200)
                      or ``minimax`` (``base_resp.status_code`` != 0 under HTTP 200);
* ``honours_seed``    whether ``seed`` is sent and recorded (hosted teachers drop it);
* ``context_tokens``  the context window when the server cannot say (vLLM reports its own
                      ``max_model_len`` in ``/v1/models``);
* ``rpm`` / ``tpm``   requests and tokens per minute the client keeps under.

Validation is strict: a profile whose ``extra_body`` contradicts its ``reasoning`` (thinking
disabled but reasoning expected, ``reasoning_split`` without ``field`` …) or that overrides a
field agentd owns (``model``, ``messages``, ``stream`` …) is a config error.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderKind = Literal["vllm", "minimax", "zai", "openai"]
ReasoningShape = Literal["none", "in_content", "field"]
OWNED_FIELDS = frozenset({
    "model", "messages", "prompt", "stream", "stream_options", "max_tokens",
    "max_completion_tokens", "temperature", "top_p", "seed", "stop", "structured_outputs",
    "return_token_ids", "logprobs",
})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileSampling(_Model):
    """Recommended sampling; ``None`` leaves the field to the server's default."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)

    def body_fields(self) -> dict[str, Any]:
        """The fields that are not part of ``CallParams`` (sent through ``extra``)."""
        fields = {"top_k": self.top_k, "min_p": self.min_p,
                  "presence_penalty": self.presence_penalty}
        return {k: v for k, v in fields.items() if v is not None}


class ProviderProfile(_Model):
    """One kind of endpoint (see the module docstring)."""

    kind: ProviderKind
    reasoning: ReasoningShape = "none"
    extra_body: dict[str, Any] = {}
    sampling: ProfileSampling = ProfileSampling()
    errors: Literal["openai", "minimax"] = "openai"
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    honours_seed: bool = True
    context_tokens: int | None = Field(default=None, ge=256)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> ProviderProfile:
        owned = sorted(set(self.extra_body) & OWNED_FIELDS)
        if owned:
            raise ValueError(f"extra_body may not set {owned}: agentd writes them")
        if any(key.startswith("guided_") for key in self.extra_body):
            raise ValueError("guided_* fields are ignored by current vLLM; use structured outputs")
        check = _CHECKS.get(self.kind)
        if check is not None:
            check(self)
        return self

    @property
    def thinks_natively(self) -> bool:
        """True when the model's reasoning arrives apart from (or ahead of) the answer."""
        return self.reasoning != "none"


def _check_vllm(profile: ProviderProfile) -> None:
    kwargs = profile.extra_body.get("chat_template_kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError("extra_body.chat_template_kwargs must be a mapping")
    thinking = kwargs.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise ValueError("chat_template_kwargs.enable_thinking must be true or false")
    if thinking is False and profile.reasoning != "none":
        raise ValueError("enable_thinking: false means reasoning: none")
    if thinking is True and profile.reasoning == "none":
        raise ValueError("enable_thinking: true needs reasoning: in_content (no reasoning "
                         "parser) or field (vLLM --reasoning-parser)")


def _check_minimax(profile: ProviderProfile) -> None:
    split = profile.extra_body.get("reasoning_split", False)
    if not isinstance(split, bool):
        raise ValueError("extra_body.reasoning_split must be true or false")
    expected = "field" if split else "in_content"
    if profile.reasoning != expected:
        raise ValueError(f"MiniMax M2 always thinks: reasoning_split: {str(split).lower()} "
                         f"means reasoning: {expected}")
    if profile.honours_seed:
        raise ValueError("MiniMax drops seed: set honours_seed: false")


def _check_zai(profile: ProviderProfile) -> None:
    thinking = profile.extra_body.get("thinking", {"type": "enabled"})  # GLM-4.6's default
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled"):
        raise ValueError("extra_body.thinking.type must be enabled or disabled")
    expected = "field" if kind == "enabled" else "none"
    if profile.reasoning != expected:
        raise ValueError(f"thinking {kind} means reasoning: {expected} (reasoning_content)")
    if profile.honours_seed:
        raise ValueError("Z.ai documents no seed: set honours_seed: false")


_CHECKS = {"vllm": _check_vllm, "minimax": _check_minimax, "zai": _check_zai}


# The profiles a config gets when it names none; configs/vllm_actors.yaml writes them out with
# the source of every value.
DEFAULT_PROFILES: dict[str, ProviderProfile] = {
    "vllm-plain": ProviderProfile(kind="vllm"),
    "qwen3-nothink": ProviderProfile(
        kind="vllm", reasoning="none",
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        sampling=ProfileSampling(temperature=0.7, top_p=0.8, top_k=20, min_p=0.0)),
    "qwen3-think": ProviderProfile(
        kind="vllm", reasoning="in_content",
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
        sampling=ProfileSampling(temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)),
    "qwen3-think-parsed": ProviderProfile(
        kind="vllm", reasoning="field",
        extra_body={"chat_template_kwargs": {"enable_thinking": True}},
        sampling=ProfileSampling(temperature=0.6, top_p=0.95, top_k=20, min_p=0.0)),
    "minimax-m2": ProviderProfile(
        kind="minimax", reasoning="field", extra_body={"reasoning_split": True},
        sampling=ProfileSampling(temperature=1.0, top_p=0.95, top_k=40), errors="minimax",
        max_tokens_field="max_completion_tokens", honours_seed=False, context_tokens=196608),
    "glm-4.6": ProviderProfile(
        kind="zai", reasoning="field", extra_body={"thinking": {"type": "enabled"}},
        sampling=ProfileSampling(temperature=1.0, top_p=0.95), honours_seed=False,
        context_tokens=200000),
    "openai-compatible": ProviderProfile(kind="openai", honours_seed=False),
}
