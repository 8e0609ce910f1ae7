"""The systemd units verify with systemd-analyze and keep the properties the daemon relies on."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")


def _unit(project_root: Path, name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(project_root / "systemd" / name)
    return parser


def _installed_copy(project_root: Path, tmp_path: Path, name: str) -> Path:
    """The unit with /opt/agentd pointing at this checkout, so ExecStart binaries exist."""
    text = (project_root / "systemd" / name).read_text()
    text = text.replace("/opt/agentd/.venv-vllm/bin/python", sys.executable)
    text = text.replace("/opt/agentd", str(project_root))
    out = tmp_path / name.replace("@.", "@actor0.")
    out.write_text(text)
    return out


class TestUnits:
    def test_agentd_service_is_notify_with_watchdog(self, project_root: Path) -> None:
        """agentd.service is Type=notify with a watchdog, reload via ctl, and its directories."""
        svc = _unit(project_root, "agentd.service")["Service"]
        assert svc["Type"] == "notify"
        assert int(svc["WatchdogSec"]) > 0
        assert svc["ExecReload"].endswith("agentd ctl reload")
        assert svc["ExecStart"].endswith("agentd serve")
        for key in ("RuntimeDirectory", "StateDirectory", "LogsDirectory", "Restart"):
            assert svc[key]

    def test_hardening_leaves_namespaces_to_bubblewrap(self, project_root: Path) -> None:
        """Hardening is on, but nothing that would stop bwrap from creating namespaces."""
        svc = _unit(project_root, "agentd.service")["Service"]
        assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
        for forbidden in ("RestrictNamespaces", "PrivateUsers"):
            assert forbidden not in svc

    def test_actor_template_reads_generated_env_file(self, project_root: Path) -> None:
        """vllm-actor@.service takes its settings from the per-instance environment file."""
        svc = _unit(project_root, "vllm-actor@.service")["Service"]
        assert svc["EnvironmentFile"] == "/etc/agentd/vllm-actors/%i.env"
        for var in ("VLLM_MODEL", "VLLM_PORT", "VLLM_SERVED_NAME", "VLLM_TP_SIZE"):
            assert "${" + var + "}" in svc["ExecStart"]

    @pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
    @pytest.mark.parametrize("name", ["agentd.service", "vllm-actor@.service"])
    def test_systemd_analyze_verify(self, project_root: Path, tmp_path: Path, name: str) -> None:
        """`systemd-analyze verify` accepts the unit."""
        unit = _installed_copy(project_root, tmp_path, name)
        assert ANALYZE is not None
        proc = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
