"""The GPU-host path of docs/real-models.md, step by step, as far as a CPU machine allows.

`make setup-gpu` runs scripts/setup_gpu_host.sh: its plan is checked in --dry-run (no CUDA,
no network here); the env files it writes are written for real and the unit that reads them
passes `systemd-analyze verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = "scripts/setup_gpu_host.sh"
ANALYZE = shutil.which("systemd-analyze")


def _env(project_root: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AGENTD_HOME": str(project_root), "AGENTD_PY": sys.executable,
            "VLLM_VENV": str(tmp_path / "venv-vllm"), "HF_HOME": str(tmp_path / "hf"),
            "AGENTD_ETC": str(tmp_path / "etc"), "SYSTEMD_DIR": str(tmp_path / "systemd")}


def _script(project_root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(project_root / SCRIPT), *args], cwd=project_root,
                          env=_env(project_root, tmp_path), capture_output=True, text=True,
                          timeout=120, check=False)


class TestGpuHostPath:
    def test_make_setup_gpu_runs_the_script(self, project_root: Path) -> None:
        """`make setup-gpu` is the project's own setup plus scripts/setup_gpu_host.sh all."""
        proc = subprocess.run(["make", "-n", "setup-gpu"], cwd=project_root, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert f"bash {SCRIPT} all" in proc.stdout

    def test_plan_creates_venv_fetches_models_then_installs_units(
        self, project_root: Path, tmp_path: Path
    ) -> None:
        """venv with vLLM, every configured model into HF_HOME, env files, the template."""
        proc = _script(project_root, tmp_path, "--dry-run", "all")
        assert proc.returncode == 0, proc.stderr
        plan = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
        steps = ["pip install -q vllm==", "snapshot_download", "agentd.policies.units",
                 "install -m 0644", "systemctl daemon-reload"]
        positions = [next(i for i, line in enumerate(plan) if s in line) for s in steps]
        assert positions == sorted(positions)
        fetch = next(line for line in plan if "snapshot_download" in line)
        assert f"HF_HOME={tmp_path / 'hf'}" in fetch and "Qwen/Qwen3-14B-AWQ" in fetch
        assert "vllm-actor@actor0 vllm-actor@actor1 vllm-actor@actor2" in proc.stderr

    def test_unknown_step_is_usage_error(self, project_root: Path, tmp_path: Path) -> None:
        """A mistyped step is one line and exit 2."""
        proc = _script(project_root, tmp_path, "fetchh")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1

    @pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
    def test_written_env_files_and_unit_verify(self, project_root: Path, tmp_path: Path) -> None:
        """The env files the units step writes feed a unit that systemd-analyze accepts;
        HF_HOME lies in the unit's StateDirectory (writable under its hardening) and no
        --quantization forces the slow AWQ kernel."""
        out = tmp_path / "etc" / "vllm-actors"
        proc = subprocess.run([sys.executable, "-m", "agentd.policies.units", "--out", str(out)],
                              cwd=project_root, capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        env = (out / "actor0.env").read_text()
        assert 'HF_HOME="/var/lib/vllm/huggingface"' in env and "--quantization" not in env
        unit_text = (project_root / "systemd" / "vllm-actor@.service").read_text()
        assert "StateDirectory=vllm" in unit_text and "ProtectHome=read-only" in unit_text
        unit = tmp_path / "vllm-actor@actor0.service"
        unit.write_text(unit_text
                        .replace("/etc/agentd/vllm-actors", str(out))
                        .replace("/opt/agentd/.venv-vllm/bin/python", sys.executable))
        assert ANALYZE is not None
        check = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                               timeout=60, check=False)
        assert check.returncode == 0, check.stderr
