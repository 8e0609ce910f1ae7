"""The disk watchdog cannot be bypassed: hard links, unlinked-but-open files, a blinded walk
and the jail's /tmp inodes all end as ``limit`` long before 1 GiB reaches the host disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentd.config import SandboxConfig
from agentd.records import RunTests, SandboxResult, TestSpec
from agentd.sandbox import Sandbox
from agentd.sandbox.quota import quota_breach

from ._helpers import FAST_LIMITS, SAMPLE

MIB = 1 << 20
CAP = 64 * MIB
LIMITS = FAST_LIMITS.model_copy(update={
    "workspace_bytes": CAP, "file_size_mb": 16, "open_files": 128, "wall_seconds": 30.0,
    "cpu_seconds": 30, "tmp_files": 1000})
WRITE_16 = "def write(name):\n  with open(name, 'wb') as f:\n    for _ in range(16): " \
           "f.write(b'x' * (1 << 20))\n"

# 64 files x 16 MiB = 1 GiB in every attack below; "wrote 1 GiB" means it was not stopped.
HARD_LINKED = WRITE_16 + """
import os
for i in range(64):
    write(f"f{i}")
    os.link(f"f{i}", f"g{i}")  # nlink 2: a walk that skips links sees nothing
print("wrote 1 GiB")
"""

UNLINKED_OPEN = """
import os
held = []
for i in range(64):
    fd = os.open(f"u{i}", os.O_CREAT | os.O_WRONLY)
    os.unlink(f"u{i}")  # no name any more: invisible to a walk, still on disk
    for _ in range(16):
        os.write(fd, b"x" * (1 << 20))
    held.append(fd)
print("wrote 1 GiB")
"""

RENAMER = WRITE_16 + """
import os, threading
for d in range(50):
    os.makedirs(f"d{d}/sub")
def spin():
    while True:
        for d in range(50):
            os.rename(f"d{d}", f"e{d}")
            os.rename(f"e{d}", f"d{d}")
threading.Thread(target=spin, daemon=True).start()
for i in range(64):
    write(f"f{i}")  # beside the spinning directories, which blind the walk
print("wrote 1 GiB")
"""

TMP_INODES = """
import os
for i in range(200_000):
    os.close(os.open(f"/tmp/{i}", os.O_CREAT | os.O_WRONLY))
print("made 200k files")
"""


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(limits=LIMITS)


async def _attack(sandbox: Sandbox, code: str) -> SandboxResult:
    ws = await sandbox.prepare_workspace("disk", {"a.py": SAMPLE})
    spec = TestSpec(argv=["python", "-c", code], timeout_s=30)
    return await sandbox.apply_action(ws, RunTests(), test_spec=spec)


class TestDiskCap:
    @pytest.mark.parametrize("code", [HARD_LINKED, UNLINKED_OPEN, RENAMER],
                             ids=["hard_links", "unlinked_open", "blinded_walk"])
    async def test_one_gibibyte_is_stopped(self, sandbox: Sandbox, code: str) -> None:
        """1 GiB written against a 64 MiB cap ends as a workspace limit before it is done."""
        r = await _attack(sandbox, code)
        assert r.error_kind == "limit" and r.killed_reason == "workspace_limit", r
        assert "wrote 1 GiB" not in r.stdout

    async def test_unlinked_files_are_named(self, sandbox: Sandbox) -> None:
        """The breach says the bytes sat in unlinked files still held open."""
        r = await _attack(sandbox, UNLINKED_OPEN)
        assert "unlinked files" in r.error, r

    async def test_tmp_inodes_capped(self, sandbox: Sandbox) -> None:
        """Empty files in the jail's /tmp are capped by count (``tmp_files``), not only by
        the tmpfs byte size they never touch."""
        r = await _attack(sandbox, TMP_INODES)
        assert r.error_kind == "limit" and "/tmp holds more than 1000 files" in r.error, r


class TestWatchdogCounts:
    def test_hard_links_counted_once(self, tmp_path: Path) -> None:
        """A file with two names takes its blocks once: 3 MiB linked twice fits in 4 MiB."""
        (tmp_path / "a").write_bytes(b"x" * 3 * MIB)
        os.link(tmp_path / "a", tmp_path / "b")
        limits = FAST_LIMITS.model_copy(update={"workspace_bytes": 4 * MIB})
        assert quota_breach(tmp_path, limits) is None
        (tmp_path / "c").write_bytes(b"x" * 2 * MIB)
        assert "more than" in (quota_breach(tmp_path, limits) or "")

    def test_preallocated_blocks_count(self, tmp_path: Path) -> None:
        """Blocks reserved past a file's size (fallocate KEEP_SIZE) count against the cap."""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(tmp_path / "p", os.O_CREAT | os.O_WRONLY)
        try:
            keep_size = 1
            if libc.fallocate(fd, keep_size, ctypes.c_long(0), ctypes.c_long(8 * MIB)) != 0:
                pytest.skip("this filesystem has no fallocate")
        finally:
            os.close(fd)
        assert (tmp_path / "p").stat().st_size == 0
        limits = FAST_LIMITS.model_copy(update={"workspace_bytes": 4 * MIB})
        assert "more than" in (quota_breach(tmp_path, limits) or "")
