"""``configs/agentd.yaml``: the daemon's own settings (paths, admin socket, episodes, queue,
writer, state, budget) and the other files it names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
)

from agentd.config.base import Model


class PathsConfig(Model):
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


class AdminConfig(Model):
    socket: Path = Path("data/run/admin.sock")
    admin_group: str | None = None
    max_request_bytes: int = Field(default=65536, ge=1024, le=1 << 20)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    max_clients: int = Field(default=32, ge=1, le=1024)


class LoggingConfig(Model):
    file: Path = Path("logs/agentd.jsonl")
    level: Literal["debug", "info", "warning", "error"] = "info"
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=4096)
    backups: int = Field(default=5, ge=0, le=100)


class DaemonConfig(Model):
    drain_timeout_s: float = Field(default=30.0, gt=0)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    status_interval_s: float = Field(default=5.0, gt=0)


MAX_EPISODES_PER_TASK = 64  # also the bound of a `submit` request's episodes


class EpisodesConfig(Model):
    concurrency: int = Field(default=4, ge=1, le=256)
    max_steps: int = Field(default=8, ge=1, le=64)
    step_timeout_s: float = Field(default=180.0, gt=0)
    llm_timeout_s: float = Field(default=120.0, gt=0)
    episode_timeout_s: float = Field(default=1200.0, gt=0)
    default_policy: str = "reference"
    default_split: str = "dev"
    episodes_per_task: int = Field(default=1, ge=1, le=MAX_EPISODES_PER_TASK)


class QueueConfig(Model):
    lease_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=100)
    poll_interval_s: float = Field(default=0.5, gt=0)


class WriterConfig(Model):
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


class StateConfig(Model):
    token_budget: int = Field(default=800, ge=400, le=800)
    history_max: int = Field(default=3, ge=1, le=16)
    item_max_chars: int = Field(default=256, ge=16, le=4096)
    list_max_items: int = Field(default=8, ge=1, le=64)
    tokenizer_json: Path | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    busy_timeout_ms: int = Field(default=10000, ge=0)


class BudgetConfig(Model):
    """Per-run caps: when a run's committed steps reach one, intake pauses (``ctl status``
    says why) until ``ctl resume`` or a higher cap on ``ctl reload``. ``None`` is no cap."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1)


class MetricsConfig(Model):
    prometheus_port: int | None = Field(default=None, ge=1, le=65535)


class FilesConfig(Model):
    """The other config files, relative to the project root."""

    sandbox: Path = Path("configs/sandbox.yaml")
    actors: Path = Path("configs/vllm_actors.yaml")
    datasets: Path = Path("configs/datasets.yaml")
    prompts: Path = Path("configs/prompts.yaml")
    teacher_prompts: Path = Path("configs/teacher_prompts.yaml")


class AgentdConfig(Model):
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
