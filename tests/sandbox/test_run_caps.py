"""The per-action caps through the real ``agentd run --policy reference``: a crafted task
whose actions are ``run_tests`` (hostile test code) then ``submit`` ends its step as
``limit`` in the trajectory, and the run itself completes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import yaml

from agentd.datasets import write_tasks
from agentd.records import RunTests, Submit, TestSpec
from agentd.testing.tasks import make_task

MEMFD_512 = ("import os\nchunk, fds = b'x' * (1 << 20), []\nfor _ in range(64):\n"
             "    fds.append(os.memfd_create('m'))\n"
             "    for _ in range(8): os.write(fds[-1], chunk)\n")


def test_memory_cap_in_a_real_run(tmp_project: Path) -> None:
    """512 MiB of memfds under a 256 MiB cap: the run_tests step is ``memory_limit``."""
    sandbox_yaml = tmp_project / "configs" / "sandbox.yaml"
    data = yaml.safe_load(sandbox_yaml.read_text())
    data["limits"].update({"memory_mb": 256, "open_files": 128})
    sandbox_yaml.write_text(yaml.safe_dump(data))
    task = msgspec.structs.replace(
        make_task(1), reference_actions=[RunTests(), Submit()],
        test_spec=TestSpec(argv=["python", "-c", MEMFD_512], timeout_s=30))
    write_tasks(tmp_project / "data" / "processed" / "dev" / "tasks.jsonl", [task])
    out = subprocess.run(
        [sys.executable, "-m", "agentd", "run", "--config",
         str(tmp_project / "configs" / "agentd.yaml"), "--policy", "reference", "--split", "dev",
         "--run-id", "caps", "--no-progress"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_project)
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [json.loads(line) for part in sorted((tmp_project / "trajectories" / "raw" /
                                                  "caps").glob("part-*.jsonl"))
             for line in part.read_text().splitlines()]
    first = next(r for r in lines if r["step"] == 0)
    result = first["sandbox_result"]
    assert result["error_kind"] == "limit" and result["killed_reason"] == "memory_limit", result
