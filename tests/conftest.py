"""Shared fixtures: the project root and a settings object rooted in a temporary directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from agentd.config import Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# CI replays the same examples every run (a red CI is then reproducible with CI=true); a
# developer's run keeps drawing new ones, which is how the merge add+remove bug was found.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture
def tmp_project(tmp_path: Path) -> Path:
    """A copy of ``configs/`` in a temporary project root, so tests never touch ./data."""
    shutil.copytree(PROJECT_ROOT / "configs", tmp_path / "configs")
    return tmp_path


@pytest.fixture
def settings(tmp_project: Path) -> Settings:
    return load_settings(tmp_project / "configs" / "agentd.yaml")
