"""The project's dvc.yaml on a small catalog in a temporary git repository, with the real dvc
(installed by `make dvc`, which the test tier runs): stages rerun only when their deps
changed, and push/pull through the default local remote restore the splits byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import yaml

from agentd.datasets import corpus_version
from agentd.testing.samples import sample_episode

BIN = Path(sys.executable).parent
DVC = BIN / "dvc"
SOURCES = {
    "alpha/__init__.py": "",
    "alpha/core.py": ("def f(value):\n    if value == None:\n        return dict()\n"
                      "    return value\n"),
    "beta.py": "def g(x):\n    if type(x) == int:\n        return x != None\n    return list()\n",
}
SPLITS = ("train", "dev", "test")


def run(cwd: Path, *argv: str) -> str:
    """Run a command in ``cwd`` with the venv first on PATH (dvc stages call ``agentd``)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, f"{argv}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines()
            if line.startswith("Running stage '")}


def _catalog(repo: Path) -> None:
    path = repo / "configs" / "datasets.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["datasets"] = [
        {"name": name, "kind": "local_tree", "source": f"data/sources/{name}", "license": "MIT"}
        for name in ("alpha", "beta")]
    doc["build"]["min_file_bytes"] = 1
    path.write_text(yaml.safe_dump(doc))


def _trajectories(repo: Path, run_id: str) -> None:
    raw = repo / "trajectories" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    lines = b"".join(msgspec.json.encode(r) + b"\n" for r in sample_episode(run_id=run_id))
    (raw / f"{run_id}.jsonl").write_bytes(lines)


@pytest.fixture
def repo(tmp_path: Path, project_root: Path) -> Path:
    """A git repository with the project's DVC files, configs and two local sources."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(project_root / name, repo / name)
    shutil.copytree(project_root / ".dvc", repo / ".dvc",
                    ignore=shutil.ignore_patterns("tmp", "cache", "config.local"))
    shutil.copytree(project_root / "configs", repo / "configs")
    _catalog(repo)
    for rel, text in SOURCES.items():
        name = rel.split("/")[0].removesuffix(".py")
        target = repo / "data" / "sources" / ("alpha" if name == "alpha" else "beta") / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _trajectories(repo, "run-1")
    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    return repo


@pytest.mark.timeout(900)
def test_repro_reruns_only_what_changed_and_the_remote_restores_it(repo: Path) -> None:
    assert DVC.exists(), "dvc is missing: `make dvc` installs the [dvc] extra"
    first = run(repo, str(DVC), "repro")
    assert ran_stages(first) == {"fetch", "build", "export"}
    splits = {s: (repo / "data/processed" / s / "tasks.jsonl").read_bytes() for s in SPLITS}
    assert any(splits.values())
    stats = json.loads((repo / "data/processed/stats.json").read_text())
    assert stats["corpus_version"] == corpus_version(repo / "data/processed")  # provenance

    assert ran_stages(run(repo, str(DVC), "repro")) == set()  # nothing changed: nothing runs

    beta = repo / "data/sources/beta/beta.py"
    beta.write_text(beta.read_text() + "\n\ndef h(y):\n    return y == None\n")
    assert ran_stages(run(repo, str(DVC), "repro")) == {"fetch", "build"}  # not the export

    _trajectories(repo, "run-2")
    assert ran_stages(run(repo, str(DVC), "repro")) == {"export"}  # not the corpus

    splits = {s: (repo / "data/processed" / s / "tasks.jsonl").read_bytes() for s in SPLITS}
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "pipeline outputs")
    run(repo, str(DVC), "push")
    clone = repo.parent / "clone"
    run(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "data/processed").exists()
    run(clone, str(DVC), "pull")
    assert {s: (clone / "data/processed" / s / "tasks.jsonl").read_bytes()
            for s in SPLITS} == splits
    assert (clone / "exports/trajectories.parquet").read_bytes() == \
        (repo / "exports/trajectories.parquet").read_bytes()
    assert (repo.parent / "agentd-dvc-remote").is_dir()  # the default remote, beside the repo
