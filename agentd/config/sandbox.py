"""``configs/sandbox.yaml``: the jail and its per-action limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from agentd.config.base import Model


class SandboxLimits(Model):
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


class SandboxConfig(Model):
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
