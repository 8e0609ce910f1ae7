"""Safe extraction: real malicious archives made in the test."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from agentd.config import ExtractConfig
from agentd.datasets.extract import safe_extract
from agentd.errors import UnsafeSourceError

LIMITS = ExtractConfig()


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x = 1\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _assert_clean(dest: Path) -> None:
    assert not dest.exists()
    assert not any(p.name.startswith(f".{dest.name}.partial") for p in dest.parent.iterdir())


class TestSafeExtract:
    def test_extracts_a_normal_tar(self, tmp_path: Path) -> None:
        """A well-formed archive lands in the target with its files."""
        arc = _tar(tmp_path / "a.tar.gz", [_file("pkg/a.py"), _file("pkg/sub/b.py", b"y = 2\n")])
        stats = safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        assert (tmp_path / "out/pkg/sub/b.py").read_text() == "y = 2\n"
        assert stats.files == 2

    @pytest.mark.parametrize("name", ["../evil.py", "pkg/../../evil.py", "/etc/evil.py"])
    def test_rejects_traversal_and_absolute_paths(self, tmp_path: Path, name: str) -> None:
        """A member outside the target stops extraction and leaves nothing behind."""
        arc = _tar(tmp_path / "a.tar.gz", [_file("ok.py"), _file(name)])
        with pytest.raises(UnsafeSourceError, match=r"evil\.py"):
            safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        _assert_clean(tmp_path / "out")
        assert not (tmp_path / "evil.py").exists()

    @pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
    def test_rejects_links_leaving_the_target(self, tmp_path: Path, kind: bytes) -> None:
        """Symlinks and hardlinks pointing outside the target are refused."""
        arc = _tar(tmp_path / "a.tar.gz", [_link("pkg/link", "../../../etc/passwd", kind)])
        with pytest.raises(UnsafeSourceError, match="points outside"):
            safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        _assert_clean(tmp_path / "out")

    def test_skips_links_inside_the_target(self, tmp_path: Path) -> None:
        """A symlink to a sibling is harmless and is skipped, not materialised."""
        arc = _tar(tmp_path / "a.tar.gz", [_file("pkg/a.py"),
                                           _link("pkg/b.py", "a.py", tarfile.SYMTYPE)])
        stats = safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        assert stats.skipped_links == 1
        assert not (tmp_path / "out/pkg/b.py").exists()

    def test_rejects_device_files(self, tmp_path: Path) -> None:
        """Fifos and device nodes are refused."""
        info = tarfile.TarInfo("pkg/fifo")
        info.type = tarfile.FIFOTYPE
        arc = _tar(tmp_path / "a.tar.gz", [(info, None)])
        with pytest.raises(UnsafeSourceError, match="device or fifo"):
            safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        _assert_clean(tmp_path / "out")

    def test_rejects_a_compression_bomb(self, tmp_path: Path) -> None:
        """A small archive that expands enormously is stopped by the ratio cap."""
        arc = _tar(tmp_path / "a.tar.gz", [_file("zeros.py", b"\0" * (8 << 20))])
        with pytest.raises(UnsafeSourceError, match="compression ratio"):
            safe_extract(arc, tmp_path / "out", LIMITS, what="t")
        _assert_clean(tmp_path / "out")

    def test_caps_member_count_and_total_bytes(self, tmp_path: Path) -> None:
        """Too many members, or too many bytes, stop extraction."""
        arc = _tar(tmp_path / "a.tar.gz", [_file(f"m{i}.py") for i in range(5)])
        with pytest.raises(UnsafeSourceError, match="more than 3 members"):
            safe_extract(arc, tmp_path / "o1", ExtractConfig(max_members=3), what="t")
        arc2 = _tar(tmp_path / "b.tar.gz", [_file("big.py", b"a" * 4096)])
        with pytest.raises(UnsafeSourceError, match="expands beyond"):
            safe_extract(arc2, tmp_path / "o3", ExtractConfig(max_total_bytes=1024, max_ratio=1e9),
                         what="t")
        _assert_clean(tmp_path / "o3")

    def test_zip_traversal_and_symlink_escape(self, tmp_path: Path) -> None:
        """Zip archives get the same checks (including symlinks stored in external_attr)."""
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("ok.py", "x = 1\n")
            zf.writestr("../up.py", "x = 1\n")
        with pytest.raises(UnsafeSourceError, match="traversal"):
            safe_extract(bad, tmp_path / "o1", LIMITS, what="t")
        link = tmp_path / "link.zip"
        with zipfile.ZipFile(link, "w") as zf:
            info = zipfile.ZipInfo("pkg/l")
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
        with pytest.raises(UnsafeSourceError, match="points outside"):
            safe_extract(link, tmp_path / "o2", LIMITS, what="t")
        _assert_clean(tmp_path / "o1")
        _assert_clean(tmp_path / "o2")

    def test_rejects_non_archives(self, tmp_path: Path) -> None:
        """A file that is neither tar nor zip is an error, not an empty tree."""
        junk = tmp_path / "junk.bin"
        junk.write_bytes(b"not an archive at all" * 10)
        with pytest.raises(UnsafeSourceError, match="not a tar or zip"):
            safe_extract(junk, tmp_path / "out", LIMITS, what="t")
