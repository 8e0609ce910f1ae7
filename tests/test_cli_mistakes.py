"""Configuration and command-line mistakes, through the real ``agentd`` CLI: each is one
clear line on stderr and exit 2 — never a traceback, never a hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

Edit = Callable[[Path, dict], list[str]]  # edits agentd.yaml's data; returns the CLI argv


def _agentd(root: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTD_SOCKET", "AGENTD_CONFIG")}
    return subprocess.run([sys.executable, "-m", "agentd", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env, cwd=root)


def _config(root: Path) -> Path:
    return root / "configs" / "agentd.yaml"


def _blocker(root: Path) -> Path:
    """A regular file: any path below it can be neither created nor written."""
    path = root / "a-file"
    path.write_text("x")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _serve(root: Path) -> list[str]:
    return ["serve", "--config", str(_config(root))]


def _logging_file(root: Path, data: dict) -> list[str]:
    data["logging"]["file"] = str(_blocker(root) / "agentd.jsonl")
    return _serve(root)


def _trajectories(root: Path, data: dict) -> list[str]:
    data["paths"]["trajectories"] = str(_blocker(root) / "raw")
    return _serve(root)


def _lock_dir(root: Path, data: dict) -> list[str]:
    (root / "lockdir").mkdir()
    data["paths"]["lock_file"] = str(root / "lockdir")
    return _serve(root)


def _socket_too_long(root: Path, data: dict) -> list[str]:
    data["admin"]["socket"] = str(root / ("s" * 120) / "admin.sock")
    return _serve(root)


def _socket_dir_blocked(root: Path, data: dict) -> list[str]:
    data["admin"]["socket"] = str(_blocker(root) / "run" / "admin.sock")
    return _serve(root)


def _tokenizer_json(root: Path, data: dict) -> list[str]:
    from agentd.datasets import write_tasks
    from agentd.testing.tasks import make_task

    write_tasks(root / "data" / "processed" / "dev" / "tasks.jsonl", [make_task(1)])
    (root / "tok.json").write_text("{}")
    data["state"]["tokenizer_json"] = str(root / "tok.json")
    return ["run", "--config", str(_config(root)), "--policy", "reference"]


CONFIG_CASES: dict[str, tuple[Edit, str]] = {
    "logging_file_unwritable": (_logging_file, "logging.file"),
    "trajectories_unwritable": (_trajectories, "paths.trajectories"),
    "lock_file_is_directory": (_lock_dir, "lock_file"),
    "socket_path_too_long": (_socket_too_long, "admin.socket"),
    "socket_dir_uncreatable": (_socket_dir_blocked, "admin.socket"),
}


def _one_line_exit_2(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentd: "), out.stderr[-2000:]
    for word in words:
        assert word in lines[0]


class TestConfigMistakes:
    @pytest.mark.parametrize("case", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
    def test_one_line_exit_2(self, tmp_project: Path, case: tuple[Edit, str]) -> None:
        """A path the daemon cannot use is named in one line, exit 2."""
        edit, word = case
        data = yaml.safe_load(_config(tmp_project).read_text())
        argv = edit(tmp_project, data)
        _config(tmp_project).write_text(yaml.safe_dump(data))
        _one_line_exit_2(_agentd(tmp_project, *argv), word)

    def test_prometheus_port_in_use(self, tmp_project: Path, busy_port: int) -> None:
        """A Prometheus port another process holds is one line, exit 2."""
        data = yaml.safe_load(_config(tmp_project).read_text())
        data["metrics"]["prometheus_port"] = busy_port
        _config(tmp_project).write_text(yaml.safe_dump(data))
        _one_line_exit_2(_agentd(tmp_project, *_serve(tmp_project)), str(busy_port))

    def test_tokenizer_json_without_package_exits(self, tmp_project: Path) -> None:
        """``tokenizer_json`` set without the ``tokenizers`` package: one line, and the
        process exits (it used to print the line, then hang)."""
        try:
            import tokenizers  # type: ignore[import-not-found]  # noqa: F401
            pytest.skip("the tokenizers package is installed here")
        except ImportError:
            pass
        data = yaml.safe_load(_config(tmp_project).read_text())
        argv = _tokenizer_json(tmp_project, data)
        _config(tmp_project).write_text(yaml.safe_dump(data))
        _one_line_exit_2(_agentd(tmp_project, *argv), "tokenizers")

    @pytest.mark.parametrize("content", [b"root: \xff\xfe\n", b"a: " + b"[" * 5000],
                             ids=["invalid_utf8", "deep_nesting"])
    def test_unreadable_yaml(self, tmp_project: Path, content: bytes) -> None:
        """Invalid UTF-8 or deeply nested YAML in a config file is one line, exit 2."""
        _config(tmp_project).write_bytes(content)
        _one_line_exit_2(_agentd(tmp_project, "check", "--config", str(_config(tmp_project))),
                         "agentd.yaml")

    def test_env_file_device_is_not_read(self, tmp_project: Path) -> None:
        """``teachers.env_file: /dev/zero`` is refused unread; the command does not hang."""
        actors = tmp_project / "configs" / "vllm_actors.yaml"
        data = yaml.safe_load(actors.read_text())
        data.setdefault("teachers", {})["env_file"] = "/dev/zero"
        actors.write_text(yaml.safe_dump(data))
        out = _agentd(tmp_project, "check", "--config", str(_config(tmp_project)), timeout=120)
        assert "Traceback" not in out.stderr


class TestRunArguments:
    @pytest.mark.parametrize("episodes", ["0", "-1"])
    def test_episodes_must_be_positive(self, tmp_project: Path, episodes: str) -> None:
        """``--episodes 0`` or a negative count is an error, not the default."""
        out = _agentd(tmp_project, "run", "--config", str(_config(tmp_project)),
                      "--episodes", episodes)
        _one_line_exit_2(out, "episodes must be between 1 and 64")

    def test_unknown_split_lists_known(self, tmp_project: Path) -> None:
        """A mistyped split is an error naming the known ones; no corpus build starts."""
        out = _agentd(tmp_project, "run", "--config", str(_config(tmp_project)),
                      "--split", "devv")
        _one_line_exit_2(out, "unknown split 'devv'", "dev, test, train")
        assert not (tmp_project / "data" / "raw").exists()

    def test_unsafe_run_id_commits_nothing(self, tmp_project: Path) -> None:
        """``--run-id ../x`` is refused before the state store is even opened."""
        out = _agentd(tmp_project, "run", "--config", str(_config(tmp_project)),
                      "--run-id", "../x")
        _one_line_exit_2(out, "not a safe directory name")
        assert not (tmp_project / "data" / "state.sqlite3").exists()

    def test_export_out_existing_directory(self, tmp_project: Path) -> None:
        """``trajectories export --out`` naming an existing directory is one line, exit 2."""
        run = tmp_project / "trajectories" / "raw" / "r1"
        run.mkdir(parents=True)
        (tmp_project / "outdir").mkdir()
        out = _agentd(tmp_project, "trajectories", "export", "--config",
                      str(_config(tmp_project)), "--out", str(tmp_project / "outdir"),
                      str(run))
        _one_line_exit_2(out, "outdir")
