"""Typed configuration for every file in ``configs/``.

``load_settings(path)`` reads ``agentd.yaml`` and the files it names, validates each with a
pydantic model (unknown keys are errors) and resolves every relative path against the project
root — never the working directory. A bad value raises ``ConfigError`` with one line naming
the file, the key path and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agentd.errors import ConfigError
from agentd.fileio import FileRefused, read_regular
from agentd.profiles import DEFAULT_PROFILES, ProviderProfile

DEFAULT_CONFIG = Path("configs/agentd.yaml")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- agentd.yaml


class PathsConfig(_Model):
    """Where the daemon keeps its files; relative paths are under the project root."""

    state_dir: Path = Path("data")
    database: Path = Path("data/state.sqlite3")
    lock_file: Path = Path("data/agentd.lock")
    workspaces: Path = Path("data/workspaces")
    raw_data: Path = Path("data/raw")
    processed_data: Path = Path("data/processed")
    logs: Path = Path("logs")
    trajectories: Path = Path("trajectories/raw")
    reports: Path = Path("reports")


class AdminConfig(_Model):
    socket: Path = Path("data/run/admin.sock")
    admin_group: str | None = None
    max_request_bytes: int = Field(default=65536, ge=1024, le=1 << 20)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    max_clients: int = Field(default=32, ge=1, le=1024)


class LoggingConfig(_Model):
    file: Path = Path("logs/agentd.jsonl")
    level: Literal["debug", "info", "warning", "error"] = "info"
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=4096)
    backups: int = Field(default=5, ge=0, le=100)


class DaemonConfig(_Model):
    drain_timeout_s: float = Field(default=30.0, gt=0)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    status_interval_s: float = Field(default=5.0, gt=0)


MAX_EPISODES_PER_TASK = 64  # also the bound of a `submit` request's episodes


class EpisodesConfig(_Model):
    concurrency: int = Field(default=4, ge=1, le=256)
    max_steps: int = Field(default=8, ge=1, le=64)
    step_timeout_s: float = Field(default=180.0, gt=0)
    llm_timeout_s: float = Field(default=120.0, gt=0)
    episode_timeout_s: float = Field(default=1200.0, gt=0)
    default_policy: str = "reference"
    default_split: str = "dev"
    episodes_per_task: int = Field(default=1, ge=1, le=MAX_EPISODES_PER_TASK)


class QueueConfig(_Model):
    lease_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    poll_interval_s: float = Field(default=0.5, gt=0)


class WriterConfig(_Model):
    """The trajectory writer (``agentd.trajectories.writer``).

    A batch is written when it holds ``batch_max_records`` records or ``batch_max_bytes``
    bytes, or ``flush_interval_s`` after its first record. ``fsync``: ``always`` syncs every
    batch, ``interval`` at most once per ``fsync_interval_s`` (and never later than that for a
    written record), ``never`` only on rotation and shutdown. A shard rotates before it would
    pass ``rotate_bytes``.
    """

    queue_size: int = Field(default=1024, ge=1, le=1_000_000)
    batch_max_records: int = Field(default=256, ge=1, le=1_000_000)
    batch_max_bytes: int = Field(default=1 << 20, ge=1024, le=256 << 20)
    flush_interval_s: float = Field(default=0.2, gt=0, le=60)
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_s: float = Field(default=1.0, gt=0, le=3600)
    rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)


class StateConfig(_Model):
    token_budget: int = Field(default=800, ge=400, le=800)
    history_max: int = Field(default=3, ge=1, le=16)
    item_max_chars: int = Field(default=256, ge=16, le=4096)
    list_max_items: int = Field(default=8, ge=1, le=64)
    tokenizer_json: Path | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    busy_timeout_ms: int = Field(default=10000, ge=0)


class BudgetConfig(_Model):
    """Per-run caps: when a run's committed steps reach one, intake pauses (``ctl status``
    says why) until ``ctl resume`` or a higher cap on ``ctl reload``. ``None`` is no cap."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)


class MetricsConfig(_Model):
    prometheus_port: int | None = Field(default=None, ge=1, le=65535)


class FilesConfig(_Model):
    """The other config files, relative to the project root."""

    sandbox: Path = Path("configs/sandbox.yaml")
    actors: Path = Path("configs/vllm_actors.yaml")
    datasets: Path = Path("configs/datasets.yaml")
    prompts: Path = Path("configs/prompts.yaml")
    teacher_prompts: Path = Path("configs/teacher_prompts.yaml")


class AgentdConfig(_Model):
    """``configs/agentd.yaml``."""

    root: Path = Path("..")
    paths: PathsConfig = PathsConfig()
    admin: AdminConfig = AdminConfig()
    logging: LoggingConfig = LoggingConfig()
    daemon: DaemonConfig = DaemonConfig()
    episodes: EpisodesConfig = EpisodesConfig()
    queue: QueueConfig = QueueConfig()
    writer: WriterConfig = WriterConfig()
    state: StateConfig = StateConfig()
    metrics: MetricsConfig = MetricsConfig()
    budget: BudgetConfig = BudgetConfig()
    files: FilesConfig = FilesConfig()


# ---------------------------------------------------------------- sandbox.yaml


class SandboxLimits(_Model):
    cpu_seconds: int = Field(default=10, ge=1, le=3600)
    wall_seconds: float = Field(default=20.0, gt=0, le=3600)
    address_space_mb: int = Field(default=2048, ge=64)
    file_size_mb: int = Field(default=16, ge=1)
    open_files: int = Field(default=256, ge=16)
    processes: int = Field(default=64, ge=2)  # per action (cgroup pids), jailer included
    memory_mb: int = Field(default=1024, ge=32)  # per action (cgroup): shm, memfd, cache too
    cpu_cores: float = Field(default=1.0, gt=0, le=256)  # per action, where cpu is available
    tmp_files: int = Field(default=2000, ge=16)  # inodes in the jail's /tmp
    workspace_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    workspace_files: int = Field(default=2000, ge=1)
    output_bytes: int = Field(default=1024 * 1024, ge=1024)
    result_text_bytes: int = Field(default=16 * 1024, ge=256)
    diff_bytes: int = Field(default=256 * 1024, ge=1024)
    action_bytes: int = Field(default=64 * 1024, ge=256)
    read_file_bytes: int = Field(default=64 * 1024, ge=256)
    max_matches: int = Field(default=500, ge=1)


class SandboxConfig(_Model):
    """``configs/sandbox.yaml``."""

    jailer: Literal["bwrap", "firejail", "nsjail", "none"] = "bwrap"
    allow_unjailed: bool = False
    cgroup: Literal["auto", "v2", "v1", "none"] = "auto"  # none: warned, never picked by auto
    binaries: list[str] = ["ast-grep", "python", "pytest"]
    uid: int = Field(default=65534, ge=1)
    gid: int = Field(default=65534, ge=1)
    seccomp: bool = True
    concurrency: int = Field(default=0, ge=0, le=256)
    limits: SandboxLimits = SandboxLimits()
    log_dir: Path = Path("logs/sandbox")
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=4096)
    log_backups: int = Field(default=3, ge=0, le=100)

    @model_validator(mode="after")
    def _none_needs_consent(self) -> SandboxConfig:
        if self.jailer == "none" and not self.allow_unjailed:
            raise ValueError("jailer 'none' runs actions unjailed; set allow_unjailed: true")
        return self

    @model_validator(mode="after")
    def _nsjail_unavailable(self) -> SandboxConfig:
        # Named in the plan, so refused by name (not as an unknown value) before any run.
        if self.jailer == "nsjail":
            raise ValueError("jailer 'nsjail' is unavailable: Debian 12 has no package for it "
                             "and agentd does not build it; use bwrap or firejail")
        return self


# ---------------------------------------------------------------- vllm_actors.yaml


class ActorConfig(_Model):
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


class ClientConfig(_Model):
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


class SamplingConfig(_Model):
    """A section's sampling; ``None`` fields fall back to the endpoint profile's recommendation."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int = Field(default=1024, ge=1, le=32768)
    seed: int | None = 0
    structured_output: bool = True


class TeacherEndpoint(_Model):
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


class TeachersConfig(_Model):
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


class ActorsConfig(_Model):
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


# ---------------------------------------------------------------- datasets.yaml


class _DatasetBase(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    license: str
    enabled: bool = True
    version: str = ""


class LocalTreeDataset(_DatasetBase):
    """A directory on this host; ``stdlib`` is the running CPython's standard library."""

    kind: Literal["local_tree"]
    source: str = "stdlib"
    exclude_dirs: list[str] = [
        "test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
    ]
    max_file_bytes: int = Field(default=256 * 1024, ge=256)


class PypiSdistDataset(_DatasetBase):
    """A source distribution fetched with pip, pinned by version and sha256."""

    kind: Literal["pypi_sdist"]
    source: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # the project name
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,63}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class HttpArchiveDataset(_DatasetBase):
    """A tar or zip archive over HTTPS (http only with ``allow_http``)."""

    kind: Literal["http_archive"]
    source: str  # the archive's URL
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    allow_http: bool = False


DatasetEntry = Annotated[
    LocalTreeDataset | PypiSdistDataset | HttpArchiveDataset, Field(discriminator="kind")
]


class TaskTestsConfig(_Model):
    """``build.tests``: which tasks get a ``test_spec`` from CPython's own test suite."""

    enabled: bool = True
    dataset: str = "cpython-stdlib"  # tasks of this entry are candidates
    suite: str = "cpython-stdlib-tests"  # the fetched Lib/test tree the tests come from
    # A gold run must finish within this. Specs run at every episode's end, and a build
    # runs each several times: fast suites are worth more than a few more tasks.
    max_seconds: float = Field(default=3.0, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)  # the spec's timeout: headroom under load
    max_support_bytes: int = Field(default=512 * 1024, ge=4096)  # carried by every task
    max_candidates: int = Field(default=3, ge=1, le=10)  # test modules tried per module
    # Bounds the build's test runs (a slow suite times many tasks) and spreads the tested
    # tasks over modules; a module's first tasks in task-id order are tried.
    max_tasks_per_module: int = Field(default=12, ge=1)


class BuildConfig(_Model):
    """How ``agentd data build`` turns corpus files into verified tasks."""

    seed: int = 20261127
    split_ratios: dict[str, float] = {"train": 0.8, "dev": 0.1, "test": 0.1}
    max_file_bytes: int = Field(default=48 * 1024, ge=256)
    min_file_bytes: int = Field(default=64, ge=0)
    max_tasks_per_recipe_per_dataset: int = Field(default=400, ge=1)
    max_multi_step_per_dataset: int = Field(default=600, ge=0)
    max_renames_per_dataset: int = Field(default=200, ge=0)
    max_steps: int = Field(default=8, ge=1, le=64)
    workers: int = Field(default=0, ge=0, le=64)
    verify_runs: int = Field(default=2, ge=1, le=5)
    tool_timeout_s: float = Field(default=300.0, gt=0)
    tests: TaskTestsConfig = TaskTestsConfig()

    @model_validator(mode="after")
    def _three_splits(self) -> BuildConfig:
        if set(self.split_ratios) != {"train", "dev", "test"}:
            raise ValueError("split_ratios must name exactly train, dev and test")
        if any(r < 0 for r in self.split_ratios.values()) or sum(self.split_ratios.values()) <= 0:
            raise ValueError("split_ratios must be non-negative and not all zero")
        return self


class DownloadConfig(_Model):
    """Limits for ``agentd data fetch``; loopback is only ever allowed by tests."""

    total_timeout_s: float = Field(default=300.0, gt=0)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_loopback_for_tests: bool = False
    pip_find_links: Path | None = None  # a local wheelhouse/sdist dir: pip runs with --no-index


class ExtractConfig(_Model):
    """Caps that stop archive bombs and oversized sources."""

    max_total_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    max_members: int = Field(default=100_000, ge=1)
    max_ratio: float = Field(default=200.0, gt=1)


class DatasetsConfig(_Model):
    """``configs/datasets.yaml``."""

    datasets: list[DatasetEntry] = []
    build: BuildConfig = BuildConfig()
    download: DownloadConfig = DownloadConfig()
    extract: ExtractConfig = ExtractConfig()


# ---------------------------------------------------------------- prompts, teacher_prompts


PROMPT_PLACEHOLDERS = frozenset({
    "instruction", "language", "files", "task_id", "step", "max_steps", "steps_left", "state",
    "observation",
})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptTemplates(_Model):
    """``configs/prompts.yaml`` and ``configs/teacher_prompts.yaml`` (see ``episode.prompts``).

    Templates hold ``{name}`` placeholders from ``PROMPT_PLACEHOLDERS``; every other brace is
    literal, so JSON examples need no escaping. An unknown ``{name}`` is a config error (a typo
    would otherwise reach the model verbatim).
    """

    version: str = "1"
    system: str = ""
    task: str = ""
    state: str = "{state}"
    observation: str = "{observation}"
    no_observation: str = ""
    format_reminder: str = ""
    few_shot: int = Field(default=0, ge=0, le=16)
    files_preview_chars: int = Field(default=4000, ge=0, le=200_000)

    @model_validator(mode="after")
    def _known_placeholders(self) -> PromptTemplates:
        for name in ("system", "task", "state", "observation", "no_observation",
                     "format_reminder"):
            unknown = set(_PLACEHOLDER.findall(getattr(self, name))) - PROMPT_PLACEHOLDERS
            if unknown:
                raise ValueError(f"{name}: unknown placeholder(s) {sorted(unknown)}")
        return self

    @property
    def template_hash(self) -> str:
        """Short sha256 of every template and setting: recorded with each step's prompt."""
        blob = self.model_dump_json().encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------- loading


class Settings(_Model):
    """Everything the daemon reads at start (and again on SIGHUP)."""

    config_path: Path
    root: Path
    agentd: AgentdConfig
    sandbox: SandboxConfig
    actors: ActorsConfig
    datasets: DatasetsConfig
    prompts: PromptTemplates
    teacher_prompts: PromptTemplates
    config_hash: str

    def path(self, p: Path) -> Path:
        """Resolve a configured path against the project root."""
        return p if p.is_absolute() else (self.root / p)


M = TypeVar("M", bound=BaseModel)


def _format_error(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    more = len(err.errors()) - 1
    tail = f"; and {more} more" if more else ""
    return f"{path}: {where}: {first['msg']}{shown}{tail}"


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_yaml(path: Path) -> Any:
    """Parse one config file: a regular file under ``MAX_CONFIG_BYTES``, UTF-8, not nested
    deep enough to exhaust the parser's recursion."""
    try:
        text = read_regular(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except FileRefused as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} invalid YAML: {getattr(exc, 'problem', exc)}") from None


def load_model(model: type[M], path: Path, *, missing_ok: bool = False) -> M:
    """Read and validate one YAML file into ``model``; an empty or absent file is defaults."""
    if missing_ok and not path.exists():
        return model()
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None


def default_config_path() -> Path:
    env = os.environ.get("AGENTD_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / DEFAULT_CONFIG
    return local if local.exists() else PACKAGE_ROOT / DEFAULT_CONFIG


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(str(p.name).encode())
        digest.update(read_regular(p, MAX_CONFIG_BYTES) if p.exists() else b"")
    return digest.hexdigest()[:16]


def load_settings(config_path: Path | None = None) -> Settings:
    """Load ``agentd.yaml`` and every file it names; raise ``ConfigError`` on any problem."""
    path = (config_path or default_config_path()).absolute()
    main = load_model(AgentdConfig, path)
    root = (path.parent / main.root).resolve() if not main.root.is_absolute() else main.root
    files = main.files

    def sub(p: Path) -> Path:
        return p if p.is_absolute() else root / p

    sandbox = load_model(SandboxConfig, sub(files.sandbox), missing_ok=True)
    actors = load_model(ActorsConfig, sub(files.actors), missing_ok=True)
    datasets = load_model(DatasetsConfig, sub(files.datasets), missing_ok=True)
    prompts = load_model(PromptTemplates, sub(files.prompts), missing_ok=True)
    teacher = load_model(PromptTemplates, sub(files.teacher_prompts), missing_ok=True)
    all_files = [path, *(sub(p) for p in files.model_dump().values())]
    return Settings(
        config_path=path, root=root, agentd=main, sandbox=sandbox, actors=actors,
        datasets=datasets, prompts=prompts, teacher_prompts=teacher,
        config_hash=_hash_files(all_files),
    )
