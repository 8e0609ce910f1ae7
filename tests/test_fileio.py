"""Atomic writes: whole file or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.fileio import atomic_output


class TestAtomicOutput:
    def test_file_appears_whole(self, tmp_path: Path) -> None:
        """After the block the file holds everything written, readable by others (0644)."""
        out = tmp_path / "sub" / "f.jsonl"
        with atomic_output(out) as f:
            f.write(b"a\n")
            assert not out.exists()
            f.write(b"b\n")
        assert out.read_bytes() == b"a\nb\n" and out.stat().st_mode & 0o777 == 0o644

    def test_error_leaves_old_file_and_no_temp(self, tmp_path: Path) -> None:
        """An error inside the block keeps the previous file and removes the temp file."""
        out = tmp_path / "f.md"
        out.write_bytes(b"old")
        with pytest.raises(RuntimeError), atomic_output(out) as f:
            f.write(b"half")
            raise RuntimeError("boom")
        assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.md"]
