"""One training step of SmolLM2-135M on the CPU: float32 with logits over the whole row (the
plain Hugging Face way) against bfloat16 autocast with logits over the answer only (what
``scripts/train_sft.py`` does). Both run interleaved in one process on the same rows, so the
machine's noise hits them alike; prints the medians and their ratio.

Runs in the trainer's virtualenv (torch is not in the daemon's):

    bash scripts/setup_train_cpu.sh setup
    ~/.cache/agentd/train/venv/bin/python benchmarks/train_step.py --data SFT.jsonl [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_sft import answer_loss, encode, read_rows

BASE = Path.home() / ".cache" / "agentd" / "vllm" / "smollm2-135m-instruct-hf"


def plain_loss(model: Any, ids: list[int], prompt_len: int) -> Any:
    import torch

    input_ids = torch.tensor([ids])
    labels = input_ids.clone()
    labels[0, :prompt_len] = -100
    return model(input_ids=input_ids, labels=labels).loss


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, default=BASE)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = [encode(tokenizer, m) for m in read_rows(args.data)[:args.rounds]]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    sides = {"fp32 full logits": lambda i, n: plain_loss(model, i, n),
             "bf16 answer logits": lambda i, n: answer_loss(model, i, n, bf16=True)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for ids, prompt_len in rows:
        for name, loss_of in sides.items():
            started = time.perf_counter()
            loss_of(ids, prompt_len).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - started)
    tokens = statistics.median(len(ids) for ids, _ in rows)
    for name, ts in times.items():
        print(f"{name:20s} median {statistics.median(ts):6.2f} s/step ({tokens:.0f} tokens)")
    a, b = (statistics.median(ts) for ts in times.values())
    print(f"ratio fp32/bf16-answer: {a / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
