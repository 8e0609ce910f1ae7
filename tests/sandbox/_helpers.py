"""Shared constants and helpers for the sandbox tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentd.config import SandboxLimits

FAST_LIMITS = SandboxLimits(
    cpu_seconds=2, wall_seconds=4.0, address_space_mb=1024, file_size_mb=2, open_files=64,
    processes=32, workspace_bytes=4 * 1024 * 1024, workspace_files=300, output_bytes=64 * 1024,
    result_text_bytes=4096, diff_bytes=16 * 1024, action_bytes=16 * 1024, read_file_bytes=4096,
    max_matches=50,
)

# The backends the attack and integration suites run against, through their real binaries.
JAILERS = ("bwrap", "firejail")

SAMPLE = "def f(x):\n    return x + 1\n\n\nprint(f(2))\n"


def processes_with(marker: str) -> str:
    """The command lines of live processes that mention ``marker`` (empty: none)."""
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return "\n".join(line for line in out.stdout.splitlines() if "pgrep" not in line)


def tree(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``root`` with owner, mode and content: to prove nothing changed."""
    out: dict[str, tuple[int, int, bytes]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out[str(p.relative_to(root))] = (st.st_uid, st.st_mode, data)
    return out
