"""The closed loop in small: SFT rows from a real reference run, a few steps of real training on
the CPU (killed once and resumed), the checkpoint served by the real vLLM, one episode on it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from agentd.cli import main
from agentd.testing.export_runs import reference_run
from agentd.testing.vllm_cpu import PROJECT_ROOT, VLLMServer
from agentd.trajectories import iter_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]
TRAIN = PROJECT_ROOT / "scripts" / "setup_train_cpu.sh"
BASE = Path(os.environ.get("AGENTD_VLLM_HOME", Path.home() / ".cache" / "agentd" / "vllm")) \
    / "smollm2-135m-instruct-hf"  # what scripts/setup_vllm_cpu.sh converts
STEPS = 12


def train_cmd(data: Path, out: Path) -> list[str]:
    return ["bash", str(TRAIN), "train", "--data", str(data), "--model", str(BASE),
            "--out", str(out), "--steps", str(STEPS), "--save-every", "3", "--lr", "1e-4",
            "--warmup", "2", "--threads", "2"]


# Run in the trainer's venv (safetensors and torch are not in the daemon's): which tensors of
# the tuned checkpoint differ from the base model's.
CHANGED_TENSORS = """
import json, sys
from safetensors.torch import load_file
base, tuned = (load_file(f"{d}/model.safetensors") for d in sys.argv[1:3])
print(json.dumps(sorted(k for k in tuned if not tuned[k].equal(base[k]))))
"""


def sft_rows(tmp_project: Path, out: Path) -> Path:
    run = asyncio.run(reference_run(tmp_project))
    config = str(tmp_project / "configs" / "agentd.yaml")
    assert main(["trajectories", "export", "--config", config, "--format", "sft",
                 "--verified-only", str(run), "--out", str(out)]) == 0
    return out


def logged_steps(log: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def train_killed_once(data: Path, out: Path) -> int:
    """Train; SIGTERM the trainer once its log shows the fourth step (a progress event, not a
    clock); return the exit code of that first process."""
    with subprocess.Popen(train_cmd(data, out), stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # the trainer prints one line per step
            if line.startswith("step 4/"):
                proc.send_signal(signal.SIGTERM)
                break
        proc.stderr.read()
        return proc.wait(timeout=600)


def test_a_few_steps_lower_the_loss_survive_a_kill_and_serve(
        tmp_project: Path, tmp_path: Path) -> None:
    """Sync on purpose: ``agentd run`` (through ``main``) starts its own event loop."""
    subprocess.run(["bash", str(TRAIN), "setup"], check=True, timeout=3600)
    data = sft_rows(tmp_project, tmp_path / "sft" / "sft.jsonl")
    config = str(tmp_project / "configs" / "agentd.yaml")
    out = tmp_path / "model"

    assert train_killed_once(data, out) == 143  # stopped by the signal, checkpointed
    stopped_at = len(logged_steps(out / "train_log.jsonl"))
    assert 4 <= stopped_at < STEPS and not (out / "final").exists()
    subprocess.run(train_cmd(data, out), check=True, timeout=1800)  # resumes
    log = logged_steps(out / "train_log.jsonl")
    assert [e["step"] for e in log] == list(range(1, STEPS + 1))  # each step once
    first, last = (sum(e["loss"] for e in part) / 3 for part in (log[:3], log[-3:]))
    assert last < 0.8 * first, (first, last)  # a dozen steps on twelve alike rows
    final = out / "final"
    assert json.loads((final / "agentd_train.json").read_text())["steps"] == STEPS

    with VLLMServer.start(log_path=tmp_path / "vllm.log", max_model_len=4096,
                          model_dir=final) as server:
        url = urlparse(server.base_url)
        actors = {"actors": [{"name": "tuned0", "host": url.hostname, "port": url.port,
                              "served_model_name": server.served_name, "quantization": None,
                              "max_model_len": 4096, "max_concurrent_requests": 2}],
                  "client": {"timeout_s": 300, "max_retries": 1},
                  "sampling": {"temperature": 0.0, "max_tokens": 200, "seed": 3,
                               "structured_output": True}}
        (tmp_project / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
        cfg = tmp_project / "configs" / "agentd.yaml"
        cfg.write_text(cfg.read_text().replace("max_steps: 8", "max_steps: 2")
                       .replace("llm_timeout_s: 120", "llm_timeout_s: 300"))
        assert main(["run", "--config", config, "--split", "dev", "--policy", "actor",
                     "--limit", "1", "--run-id", "tuned", "--no-progress"]) in (0, 1)
    records = [r for _, _, r in iter_records([tmp_project / "trajectories" / "raw" / "tuned"])]
    assert records and all(not isinstance(r, Exception) for r in records)
    assert {r.policy.endpoint for r in records} == {"tuned0"}  # type: ignore[union-attr]
    assert any(r.done for r in records)  # type: ignore[union-attr]
    print(f"tuned smoke: loss {first:.3f} -> {last:.3f}; episode of {len(records)} steps, "
          f"verified {sum(r.verified for r in records)}", file=sys.stderr)  # type: ignore[union-attr]


def test_train_layers_changes_the_top_layers_only(tmp_project: Path, tmp_path: Path) -> None:
    """``--train-layers 2``: the two top decoder layers and the final norm move; the embedding
    (tied to the output layer) and the 28 layers below stay the base model's, bit for bit."""
    subprocess.run(["bash", str(TRAIN), "setup"], check=True, timeout=3600)
    data = sft_rows(tmp_project, tmp_path / "sft.jsonl")
    out = tmp_path / "model"
    subprocess.run(["bash", str(TRAIN), "train", "--data", str(data), "--model", str(BASE),
                    "--out", str(out), "--steps", "2", "--warmup", "1", "--lr", "1e-3",
                    "--threads", "2", "--train-layers", "2"], check=True, timeout=1800)
    python = subprocess.run(["bash", str(TRAIN), "path"], check=True, capture_output=True,
                            text=True).stdout.strip()
    changed = json.loads(subprocess.run(
        [python, "-c", CHANGED_TENSORS, str(BASE), str(out / "final")], check=True,
        capture_output=True, text=True, timeout=600).stdout)
    layers = {name.split(".")[2] for name in changed if name.startswith("model.layers.")}
    assert layers == {"28", "29"}, changed
    assert "model.norm.weight" in changed
    assert not [n for n in changed if "embed" in n or n.startswith("lm_head")], changed
    method = json.loads((out / "final" / "agentd_train.json").read_text())["method"]
    assert method == "fine-tuning of the top 2 layers"
