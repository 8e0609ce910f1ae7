"""Unit tests: workspace snapshots, hand-over, read_file and diffs, all in Python."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentd.config import SandboxLimits
from agentd.records import ReadFile
from agentd.sandbox.diffing import changed_files, unified_diff
from agentd.sandbox.paths import ActionRejected
from agentd.sandbox.results import read_file
from agentd.sandbox.workspace import (
    Owner,
    WorkspaceLimitError,
    create_workspace,
    display_name,
    remove_workspace,
    safe_name,
    snapshot,
)

from ._helpers import FAST_LIMITS


class TestCreate:
    def test_files_written_and_owned(self, tmp_path: Path) -> None:
        """Task files land in a fresh directory; the snapshot hands them to the sandbox uid."""
        ws = create_workspace(tmp_path, "t/1", {"a.py": "x\n", "pkg/b.py": "y\n"}, Owner())
        assert ws.parent == tmp_path and ws.name.startswith("t_1-")
        snapshot(ws, FAST_LIMITS, Owner(65534, 65534))
        assert (ws / "pkg" / "b.py").stat().st_uid == 65534
        assert ws.stat().st_uid == 65534

    @pytest.mark.parametrize("bad", ["../x.py", "/abs.py", "-x.py", "."])
    def test_bad_task_paths(self, tmp_path: Path, bad: str) -> None:
        """Task file names obey the same rules as action paths; nothing is left behind."""
        with pytest.raises(ValueError, match="task file"):
            create_workspace(tmp_path, "t", {bad: "x"}, Owner())
        assert list(tmp_path.iterdir()) == []

    def test_safe_name(self) -> None:
        """task ids become bounded, separator-free file names."""
        assert safe_name("../../etc/passwd") == "_.._etc_passwd"
        assert len(safe_name("x" * 500)) == 80
        assert safe_name("") == "task"


class TestSnapshot:
    def test_skips_symlinks_fifos(self, tmp_path: Path) -> None:
        """Only regular files are read; symlinks are not followed, FIFOs never opened."""
        (tmp_path / "a.py").write_text("a")
        (tmp_path / "link").symlink_to("/etc/passwd")
        os.mkfifo(tmp_path / "fifo")
        assert snapshot(tmp_path, FAST_LIMITS).files == {"a.py": b"a"}

    def test_hardlink_refused(self, tmp_path: Path) -> None:
        """A hard-linked file may be a host file linked in: refuse, never hand it over."""
        host = tmp_path / "host.txt"
        host.write_text("secret")
        ws = tmp_path / "ws"
        ws.mkdir()
        os.link(host, ws / "h.py")
        with pytest.raises(ActionRejected) as info:
            snapshot(ws, FAST_LIMITS, Owner(65534, 65534))
        assert info.value.kind == "path_escape"
        assert host.stat().st_uid == 0

    def test_file_count_limit(self, tmp_path: Path) -> None:
        """More entries than workspace_files is a limit error."""
        for i in range(FAST_LIMITS.workspace_files + 1):
            (tmp_path / f"f{i}").write_text("")
        with pytest.raises(WorkspaceLimitError):
            snapshot(tmp_path, FAST_LIMITS)

    def test_byte_limit(self, tmp_path: Path) -> None:
        """More bytes than workspace_bytes is a limit error."""
        limits = SandboxLimits(workspace_bytes=2048)
        (tmp_path / "big").write_bytes(b"x" * 4096)
        with pytest.raises(WorkspaceLimitError):
            snapshot(tmp_path, limits)

    def test_depth_limit(self, tmp_path: Path) -> None:
        """Directory nesting is bounded."""
        deep = tmp_path.joinpath(*["d"] * 70)
        deep.mkdir(parents=True)
        with pytest.raises(WorkspaceLimitError, match="deeper"):
            snapshot(tmp_path, FAST_LIMITS)

    def test_weird_names_are_json_safe(self, tmp_path: Path) -> None:
        """Newlines and undecodable bytes in names are escaped, not passed through."""
        (tmp_path / "a\nb.py").write_text("x")
        os.close(os.open(os.fsencode(tmp_path) + b"/\xff.py", os.O_CREAT | os.O_WRONLY))
        names = sorted(snapshot(tmp_path, FAST_LIMITS).files)
        assert names == ["\\xff.py", "a\\x0ab.py"]
        assert display_name("ok.py") == "ok.py"

    def test_workspace_symlink_refused(self, tmp_path: Path) -> None:
        """The workspace root itself must be a real directory."""
        (tmp_path / "ws").symlink_to("/etc")
        with pytest.raises(ActionRejected):
            snapshot(tmp_path / "ws", FAST_LIMITS)

    def test_remove_does_not_follow(self, tmp_path: Path) -> None:
        """Removing a workspace leaves symlink targets alone."""
        keep = tmp_path / "keep"
        keep.mkdir()
        (keep / "x").write_text("x")
        ws = tmp_path / "ws"
        ws.mkdir()
        (ws / "l").symlink_to(keep)
        remove_workspace(ws)
        assert not ws.exists() and (keep / "x").exists()


class TestReadFile:
    def test_line_range(self, tmp_path: Path) -> None:
        """start_line/end_line are 1-based and inclusive."""
        (tmp_path / "a.py").write_text("1\n2\n3\n")
        r = read_file(tmp_path, ReadFile(path="a.py", start_line=2, end_line=3), FAST_LIMITS)
        assert r.ok and r.stdout == "2\n3\n"

    def test_capped(self, tmp_path: Path) -> None:
        """Reads stop at read_file_bytes and say so."""
        (tmp_path / "a.py").write_text("x" * 10000)
        r = read_file(tmp_path, ReadFile(path="a.py"), FAST_LIMITS)
        assert len(r.stdout) == FAST_LIMITS.read_file_bytes and "truncated" in r.stderr

    @pytest.mark.parametrize(("setup", "kind"), [("symlink", "path_escape"),
                                                 ("fifo", "invalid_action"),
                                                 ("dir", "invalid_action")])
    def test_refuses_non_regular(self, tmp_path: Path, setup: str, kind: str) -> None:
        """Symlinks, FIFOs and directories are not read (and nothing blocks)."""
        target = tmp_path / "x"
        {"symlink": lambda: target.symlink_to("/etc/passwd"),
         "fifo": lambda: os.mkfifo(target), "dir": target.mkdir}[setup]()
        with pytest.raises(ActionRejected) as info:
            read_file(tmp_path, ReadFile(path="x"), FAST_LIMITS)
        assert info.value.kind == kind

    def test_bad_range(self, tmp_path: Path) -> None:
        """end before start is invalid."""
        (tmp_path / "a.py").write_text("1\n")
        with pytest.raises(ActionRejected):
            read_file(tmp_path, ReadFile(path="a.py", start_line=3, end_line=1), FAST_LIMITS)


class TestDiff:
    def test_exact_unified_diff(self) -> None:
        """Modified, created and deleted files, sorted, with fixed headers."""
        before = {"a.py": b"x = 1\n", "gone.py": b"bye\n"}
        after = {"a.py": b"x = 2\n", "new.py": b"hi"}
        assert changed_files(before, after) == ["a.py", "gone.py", "new.py"]
        assert unified_diff(before, after, 10000) == (
            "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
            "--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
            "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+hi\n\\ No newline at end of file\n"
        )

    def test_binary_and_cap(self) -> None:
        """Binary content is named, not dumped; the cap cuts at a line and says so."""
        assert unified_diff({"b": b"\xff"}, {"b": b"\xfe"}, 1000) == \
            "Binary files a/b and b/b differ\n"
        big = unified_diff({}, {"a": b"line\n" * 1000}, 1024)
        assert len(big.encode()) <= 1024 + 64 and big.endswith("truncated at 1024 bytes\n")


class TestDiffBounds:
    def test_large_file_summarised(self) -> None:
        """A file past the per-file bound gets a one-line summary, not a quadratic diff."""
        out = unified_diff({"x": b"a\n" * 400_000}, {"x": b"b\n" * 400_000}, 10_000)
        assert out == "Large files a/x and b/x differ (800000 -> 800000 bytes)\n"
