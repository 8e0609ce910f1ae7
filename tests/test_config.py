"""Config loading: strict schemas, one-line errors, paths against the project root."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.config import load_settings
from agentd.errors import ConfigError


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


class TestLoading:
    def test_shipped_configs_load(self, project_root: Path) -> None:
        """The committed configs validate and name three actors."""
        settings = load_settings(project_root / "configs" / "agentd.yaml")
        assert settings.root == project_root
        assert len(settings.actors.actors) == 3
        assert settings.sandbox.jailer == "bwrap"

    def test_paths_resolve_against_root_not_cwd(self, tmp_project: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """Relative paths resolve against the project root whatever the working directory."""
        monkeypatch.chdir("/")
        settings = load_settings(tmp_project / "configs" / "agentd.yaml")
        database = settings.path(settings.agentd.paths.database)
        assert database == tmp_project / "data" / "state.sqlite3"

    def test_config_hash_changes_with_any_file(self, tmp_project: Path) -> None:
        """Editing a sub-config changes the snapshot hash recorded in trajectories."""
        cfg = tmp_project / "configs" / "agentd.yaml"
        before = load_settings(cfg).config_hash
        _edit(tmp_project / "configs" / "sandbox.yaml", "cpu_seconds: 10", "cpu_seconds: 11")
        assert load_settings(cfg).config_hash != before

    def test_env_var_names_default_config(self, tmp_project: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """$AGENTD_CONFIG is the default config path."""
        monkeypatch.setenv("AGENTD_CONFIG", str(tmp_project / "configs" / "agentd.yaml"))
        assert load_settings().root == tmp_project


class TestErrors:
    def test_unknown_key_is_an_error(self, tmp_project: Path) -> None:
        """An unknown key names the file and the key path."""
        cfg = tmp_project / "configs" / "agentd.yaml"
        _edit(cfg, "episodes:\n", "episodes:\n  colour: blue\n")
        with pytest.raises(ConfigError, match=r"agentd\.yaml: episodes\.colour: Extra inputs"):
            load_settings(cfg)

    def test_bad_value_in_sub_config_names_that_file(self, tmp_project: Path) -> None:
        """A bad value in sandbox.yaml is reported against sandbox.yaml, in one line."""
        _edit(tmp_project / "configs" / "sandbox.yaml", "cpu_seconds: 10", "cpu_seconds: lots")
        with pytest.raises(ConfigError) as err:
            load_settings(tmp_project / "configs" / "agentd.yaml")
        message = str(err.value)
        assert "sandbox.yaml: limits.cpu_seconds" in message and "lots" in message
        assert "\n" not in message

    def test_invalid_yaml_reports_line(self, tmp_project: Path) -> None:
        """Broken YAML names the file and the line."""
        cfg = tmp_project / "configs" / "agentd.yaml"
        cfg.write_text("paths: [unclosed\n")
        with pytest.raises(ConfigError, match=r"agentd\.yaml: line \d+ invalid YAML"):
            load_settings(cfg)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing main config is a ConfigError, not a traceback."""
        with pytest.raises(ConfigError, match="file not found"):
            load_settings(tmp_path / "nope.yaml")

    def test_unjailed_needs_explicit_consent(self, tmp_project: Path) -> None:
        """jailer: none without allow_unjailed is refused."""
        _edit(tmp_project / "configs" / "sandbox.yaml", "jailer: bwrap", "jailer: none")
        with pytest.raises(ConfigError, match="allow_unjailed"):
            load_settings(tmp_project / "configs" / "agentd.yaml")

    def test_token_budget_range(self, tmp_project: Path) -> None:
        """The state token budget must stay within 400–800."""
        _edit(tmp_project / "configs" / "agentd.yaml", "token_budget: 800", "token_budget: 5000")
        with pytest.raises(ConfigError, match=r"state\.token_budget"):
            load_settings(tmp_project / "configs" / "agentd.yaml")


def test_no_secrets_in_committed_configs(project_root: Path) -> None:
    """Committed configs name key variables, never key values."""
    for path in (project_root / "configs").glob("*.yaml"):
        text = path.read_text().lower()
        assert "sk-" not in text and "api_key:" not in text, path
    assert ".env.local" in (project_root / ".gitignore").read_text()
