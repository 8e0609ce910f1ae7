"""``configs/datasets.yaml``: the catalog of sources and how tasks are built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from agentd.config.base import Model


class _DatasetBase(Model):
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


class TaskTestsConfig(Model):
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


class BuildConfig(Model):
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


class DownloadConfig(Model):
    """Limits for ``agentd data fetch``; loopback is only ever allowed by tests."""

    total_timeout_s: float = Field(default=300.0, gt=0)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_loopback_for_tests: bool = False
    pip_find_links: Path | None = None  # a local wheelhouse/sdist dir: pip runs with --no-index


class ExtractConfig(Model):
    """Caps that stop archive bombs and oversized sources."""

    max_total_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    max_members: int = Field(default=100_000, ge=1)
    max_ratio: float = Field(default=200.0, gt=1)


class DatasetsConfig(Model):
    """``configs/datasets.yaml``."""

    datasets: list[DatasetEntry] = []
    build: BuildConfig = BuildConfig()
    download: DownloadConfig = DownloadConfig()
    extract: ExtractConfig = ExtractConfig()
