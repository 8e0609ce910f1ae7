"""``configs/vllm_actors.yaml``: the vLLM actors, the HTTP client, sampling, teachers, profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from agentd.config.base import Model
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile


class ActorConfig(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    scheme: Literal["http", "https"] = "http"
    gpu_ids: list[int] = []
    served_model_name: str = "qwen3-14b-awq"
    model: str = "Qwen/Qwen3-14B-AWQ"
    # None lets vLLM read the checkpoint's own config: an AWQ checkpoint then runs on the fast
    # awq_marlin kernel, where an explicit "awq" would force the slow one.
    quantization: str | None = None
    profile: str = "qwen3-nothink"  # a name in `profiles`
    reasoning_parser: str | None = None  # vLLM --reasoning-parser (e.g. qwen3) for `field` profiles
    tensor_parallel_size: int = Field(default=1, ge=1, le=16)
    max_model_len: int = Field(default=8192, ge=256)
    max_concurrent_requests: int = Field(default=16, ge=1, le=1024)
    # vLLM on CPU crashes on chunked prefill with a per-request seed: a batch budget of at least
    # the context (the default) keeps every prompt in one chunk.
    max_num_batched_tokens: int | None = Field(default=None, ge=256)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


class ClientConfig(Model):
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    circuit_failures: int = Field(default=5, ge=1)
    circuit_reset_s: float = Field(default=15.0, gt=0)
    # 429s wait for the server's Retry-After (else the backoff) without using up max_retries,
    # up to this much waiting per request.
    throttle_max_wait_s: float = Field(default=300.0, ge=0)
    health_interval_s: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=64, ge=1, le=4096)  # per endpoint pool
    stream: bool = False  # SSE streaming: adds time-to-first-token to each Generation
    return_token_ids: bool = True  # vLLM extension: prompt/completion token ids
    logprobs: bool = False  # per-token logprobs of the sampled tokens


class SamplingConfig(Model):
    """A section's sampling; ``None`` fields fall back to the endpoint profile's recommendation."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1, le=32768)
    seed: int | None = 0
    structured_output: bool = True


class TeacherEndpoint(Model):
    name: str
    base_url: str
    model: str
    api_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    price_prompt_per_m: float = Field(default=0.0, ge=0)
    price_completion_per_m: float = Field(default=0.0, ge=0)
    # Prompt tokens served from the provider's cache (usage.prompt_tokens_details.cached_tokens);
    # None prices them as uncached.
    price_cached_prompt_per_m: float | None = Field(default=None, ge=0)
    max_concurrent_requests: int = Field(default=8, ge=1, le=1024)
    profile: str = "openai-compatible"  # a name in `profiles`


class TeachersConfig(Model):
    primary: TeacherEndpoint = TeacherEndpoint(
        name="minimax-m2", base_url="https://api.minimax.io/v1", model="MiniMax-M2",
        api_key_env="MINIMAX_API_KEY", price_prompt_per_m=0.3, price_completion_per_m=1.2,
        price_cached_prompt_per_m=0.03, profile="minimax-m2",
    )
    fallback: TeacherEndpoint | None = TeacherEndpoint(
        name="glm-4.6", base_url="https://api.z.ai/api/paas/v4", model="glm-4.6",
        api_key_env="ZAI_API_KEY", price_prompt_per_m=0.6, price_completion_per_m=2.2,
        price_cached_prompt_per_m=0.11, profile="glm-4.6",
    )
    sampling: SamplingConfig = SamplingConfig(structured_output=False)
    env_file: Path = Path(".env.local")  # keys not in the environment are read from here


class ActorsConfig(Model):
    """``configs/vllm_actors.yaml``."""

    actors: list[ActorConfig] = []
    client: ClientConfig = ClientConfig()
    sampling: SamplingConfig = SamplingConfig()
    teachers: TeachersConfig = TeachersConfig()
    profiles: dict[str, ProviderProfile] = DEFAULT_PROFILES  # merged over the built-in ones

    @field_validator("profiles", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        return {**DEFAULT_PROFILES, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _profiles_exist(self) -> ActorsConfig:
        named = [(f"actor {a.name}", a.profile) for a in self.actors]
        t = self.teachers
        named += [(f"teacher {e.name}", e.profile) for e in (t.primary, t.fallback) if e]
        for who, name in named:
            if name not in self.profiles:
                raise ValueError(f"{who}: unknown profile {name!r} "
                                 f"(one of {', '.join(sorted(self.profiles))})")
        for a in self.actors:
            if self.profiles[a.profile].kind != "vllm":
                raise ValueError(f"actor {a.name}: profile {a.profile!r} is not a vllm profile")
        return self

    def profile(self, name: str) -> ProviderProfile:
        return self.profiles[name]
