"""`agentd check` on this host: real configs, real jail, unreachable actors are warnings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentd", "check", "--config", str(config)],
                          capture_output=True, text=True, check=False, timeout=120)


class TestDoctor:
    def test_healthy_host_passes_with_actor_warnings(self, tmp_project: Path) -> None:
        """Jail and ast-grep work here; actors that do not answer are warnings, exit 0."""
        proc = check(tmp_project / "configs" / "agentd.yaml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = {line.split()[1]: line.split()[0] for line in proc.stdout.splitlines()}
        assert lines["jail"] == "ok" and lines["ast-grep"] == "ok" and lines["configs"] == "ok"
        assert lines["actor"] == "warn"

    def test_nsjail_refused_in_one_line(self, tmp_project: Path) -> None:
        """nsjail is unavailable: refused before any check runs, one line, exit 2."""
        sandbox = tmp_project / "configs" / "sandbox.yaml"
        sandbox.write_text(sandbox.read_text().replace("jailer: bwrap", "jailer: nsjail"))
        proc = check(tmp_project / "configs" / "agentd.yaml")
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and "nsjail" in proc.stderr

    def test_firejail_notes_its_weaknesses(self, tmp_project: Path) -> None:
        """jailer firejail passes here and prints where it is weaker than bwrap."""
        sandbox = tmp_project / "configs" / "sandbox.yaml"
        sandbox.write_text(sandbox.read_text().replace("jailer: bwrap", "jailer: firejail"))
        proc = check(tmp_project / "configs" / "agentd.yaml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert any(line.startswith("ok") and " jail " in line for line in proc.stdout.splitlines())
        assert "setuid root" in proc.stdout

    def test_unjailed_config_warns_loudly(self, tmp_project: Path) -> None:
        """jailer none (explicitly allowed) is reported as UNJAILED."""
        sandbox = tmp_project / "configs" / "sandbox.yaml"
        text = sandbox.read_text().replace("jailer: bwrap", "jailer: none")
        sandbox.write_text(text.replace("allow_unjailed: false", "allow_unjailed: true"))
        proc = check(tmp_project / "configs" / "agentd.yaml")
        assert "UNJAILED" in proc.stdout
