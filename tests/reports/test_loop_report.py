"""The closed loop's report, from the files its stages leave (two eval summaries, the trainer's
log, the stage timings), and the rule that the daemon's install never pulls in torch."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from agentd.reports.loop_report import render_loop_report

ROOT = Path(__file__).resolve().parents[2]


def summary(untuned: float, tuned: float) -> dict[str, Any]:
    def run(label: str, success: float) -> dict[str, Any]:
        return {"label": label, "overall": {"episodes": 40, "success": success,
                                            "pass@1": success, "pass@2": min(1.0, 2 * success),
                                            "precision": None, "parse_failure_rate": 0.25,
                                            "mean_steps": 3.5}}
    return {"k": [1, 2], "runs": [run("untuned", untuned), run("tuned", tuned)]}


def test_report_puts_both_models_side_by_side(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 3.0 / i}) + "\n"
                           for i in range(1, 31)) + '{"step": 31, "lo')  # a torn last line
    text = render_loop_report(test=summary(0.025, 0.4), heldout=summary(0.0, 0.05),
                              train_log=log, seconds={"train": 600.0, "collect": 60.0},
                              heldout_recipes=["b", "a"], command="make loop", out_dir=tmp_path)
    assert "tuned success **0.400** against untuned **0.025** (16.0×)" in text
    assert "| tuned | 40 | 0.400 | 0.400 | 0.800 | — | 0.250 | 3.500 |" in text
    assert "## Held-out recipes (a, b: never in training)" in text
    assert "30 optimiser steps" in text and "| **total** | **660** |" in text
    assert (tmp_path / "train_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    untouched = render_loop_report(test=summary(0.0, 0.1), heldout=summary(0.0, 0.0),
                                   train_log=tmp_path / "none.jsonl", seconds={},
                                   heldout_recipes=[], command="make loop", out_dir=tmp_path)
    assert "the untuned model solved none" in untouched


def test_the_default_install_pulls_in_no_torch() -> None:
    """Training lives in its own venv (scripts/setup_train_cpu.sh): neither the dependencies
    nor any agentd module, the loop report included, bring in torch or transformers."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    heavy = ("torch", "transformers", "peft", "trl", "accelerate")
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert not dep.lower().startswith(heavy), dep
    code = ("import sys, agentd.cli, agentd.reports.loop_report, agentd.reports.eval_report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{heavy!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
