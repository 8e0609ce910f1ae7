"""Typed configuration for every file in ``configs/``, one module per file.

``load_settings(path)`` reads ``agentd.yaml`` and the files it names, validates each with a
pydantic model (unknown keys are errors) and resolves every relative path against the project
root — never the working directory. A bad value raises ``ConfigError`` with one line naming
the file, the key path and what was expected.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from agentd.config.actors import (
    ActorConfig,
    ActorsConfig,
    ClientConfig,
    SamplingConfig,
    TeacherEndpoint,
    TeachersConfig,
)
from agentd.config.base import MAX_CONFIG_BYTES, Model, load_model, read_yaml
from agentd.config.datasets import (
    BuildConfig,
    DatasetEntry,
    DatasetsConfig,
    DownloadConfig,
    ExtractConfig,
    HttpArchiveDataset,
    LocalTreeDataset,
    PypiSdistDataset,
    TaskTestsConfig,
)
from agentd.config.main import (
    MAX_EPISODES_PER_TASK,
    AdminConfig,
    AgentdConfig,
    BudgetConfig,
    DaemonConfig,
    EpisodesConfig,
    FilesConfig,
    LoggingConfig,
    MetricsConfig,
    PathsConfig,
    QueueConfig,
    StateConfig,
    WriterConfig,
)
from agentd.config.prompts import (
    PROMPT_PLACEHOLDERS,
    PromptTemplates,
)
from agentd.config.sandbox import (
    SandboxConfig,
    SandboxLimits,
)
from agentd.fileio import read_regular

DEFAULT_CONFIG = Path("configs/agentd.yaml")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_CONFIG_BYTES",
    "MAX_EPISODES_PER_TASK",
    "PACKAGE_ROOT",
    "PROMPT_PLACEHOLDERS",
    "ActorConfig",
    "ActorsConfig",
    "AdminConfig",
    "AgentdConfig",
    "BudgetConfig",
    "BuildConfig",
    "ClientConfig",
    "DaemonConfig",
    "DatasetEntry",
    "DatasetsConfig",
    "DownloadConfig",
    "EpisodesConfig",
    "ExtractConfig",
    "FilesConfig",
    "HttpArchiveDataset",
    "LocalTreeDataset",
    "LoggingConfig",
    "MetricsConfig",
    "PathsConfig",
    "PromptTemplates",
    "PypiSdistDataset",
    "QueueConfig",
    "SamplingConfig",
    "SandboxConfig",
    "SandboxLimits",
    "Settings",
    "StateConfig",
    "TaskTestsConfig",
    "TeacherEndpoint",
    "TeachersConfig",
    "WriterConfig",
    "default_config_path",
    "load_model",
    "load_settings",
    "read_yaml",
]


class Settings(Model):
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
