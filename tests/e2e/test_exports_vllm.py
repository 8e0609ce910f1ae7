"""Token-exact SFT rows from a real vLLM: the exported ids are the server's, and decode back.

The engine runs actor episodes against the real vLLM (CPU) server; the SFT export of that run
must carry the ids the server returned. Checked against the same server: its tokenisation of
the exported messages (with the chat template) is the recorded prompt ids, and its
detokenisation of the completion ids is the recorded raw output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from agentd.cli import main
from agentd.config import load_settings
from agentd.datasets import write_tasks
from agentd.engine.foreground import RunOptions, run_foreground
from agentd.exports.chat import prompt_messages
from agentd.testing.hf_datasets import load
from agentd.testing.tasks import make_task
from agentd.testing.vllm_cpu import SERVED_NAME, VLLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]
SPECIAL_END = "<|im_end|>"  # SmolLM2's end of turn: the server's ids include it, the text not


def _configure(root: Path, server: VLLMServer) -> Path:
    url = urlparse(server.base_url)
    actors = {
        "actors": [{"name": "cpu0", "host": url.hostname, "port": url.port,
                    "served_model_name": SERVED_NAME, "quantization": None,
                    "max_model_len": 2048, "max_concurrent_requests": 4}],
        "client": {"timeout_s": 300, "max_retries": 1},
        "sampling": {"temperature": 0.7, "max_tokens": 160, "seed": 5,
                     "structured_output": True},
    }
    (root / "configs" / "vllm_actors.yaml").write_text(yaml.safe_dump(actors))
    cfg = root / "configs" / "agentd.yaml"
    cfg.write_text(cfg.read_text().replace("max_steps: 8", "max_steps: 2")
                   .replace("llm_timeout_s: 120", "llm_timeout_s: 300"))
    tasks = root / "data" / "processed" / "dev" / "tasks.jsonl"
    tasks.parent.mkdir(parents=True)
    write_tasks(tasks, [make_task(i, max_steps=2) for i in range(2)])
    return cfg


def _post(server: VLLMServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    root = server.base_url.removesuffix("/v1")
    with httpx.Client(trust_env=False, timeout=120) as client:
        response = client.post(f"{root}{path}", json={"model": SERVED_NAME, **body})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def _check(server: VLLMServer, messages: list[dict[str, str]], prompt_ids: list[int],
           completion_ids: list[int]) -> None:
    """The server's tokenisation of the messages, and detokenisation of the completion."""
    prompt = _post(server, "/tokenize", {"messages": messages[:-1],
                                         "add_generation_prompt": True})
    assert prompt["tokens"] == prompt_ids
    text = _post(server, "/detokenize", {"tokens": completion_ids})
    assert text["prompt"].removesuffix(SPECIAL_END) == messages[-1]["content"]


async def test_exported_ids_are_the_servers_and_decode_back(vllm_server: VLLMServer,
                                                            tmp_project: Path,
                                                            tmp_path: Path) -> None:
    """Every step of the Parquet export (so the check does not depend on how well a 135M
    model refactors) and every SFT row (its verified steps) round-trip through the server."""
    cfg = _configure(tmp_project, vllm_server)
    summary = await run_foreground(load_settings(cfg),
                                   RunOptions("dev", "actor", None, 1, "tok", False))
    export = ["trajectories", "export", "--config", str(cfg), summary["trajectories"]]
    steps_out, sft_out = tmp_path / "all" / "steps.parquet", tmp_path / "sft" / "sft.jsonl"
    assert main([*export, "--format", "parquet", "--out", str(steps_out)]) == 0
    assert main([*export, "--format", "sft", "--out", str(sft_out)]) == 0
    steps = load(steps_out, tmp_path / "hf")
    assert steps.num_rows > 0
    for step in steps:
        messages = [*prompt_messages(step["prompt"]),
                    {"role": "assistant", "content": step["model_output_raw"]}]
        _check(vllm_server, messages, step["usage_prompt_token_ids"],
               step["usage_completion_token_ids"])
    if not any(steps["verified"]):  # a 135M model may verify nothing: no SFT rows to load
        assert sft_out.read_bytes() == b""
        return
    rows = load(sft_out, tmp_path / "hf")
    assert rows.num_rows == sum(steps["verified"])
    for row in rows:
        assert row["token_ids_source"] == "server"
        _check(vllm_server, row["messages"], row["prompt_token_ids"],
               row["completion_token_ids"])
