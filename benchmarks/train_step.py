"""One training step of SmolLM2-135M on the CPU: float32 with logits over the whole row (the
plain Hugging Face way) against bfloat16 autocast with logits over the answer only (what
``scripts/train_sft.py`` does), and that with only the top ``--top`` layers trained
(``--train-layers``). All run interleaved in one process on the same rows, so the machine's
noise hits them alike; prints the medians and their ratios.

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
from train_sft import answer_loss, encode, freeze_below, read_rows

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
    p.add_argument("--top", type=int, default=10, help="layers trained by the third side")
    args = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = [encode(tokenizer, m) for m in read_rows(args.data)[:args.rounds]]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    top = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    top_optimizer = torch.optim.AdamW(freeze_below(top, args.top), lr=1e-6)
    sides = {
        "fp32 full logits": (lambda i, n: plain_loss(model, i, n), optimizer),
        "bf16 answer logits": (lambda i, n: answer_loss(model, i, n, bf16=True), optimizer),
        f"bf16 answer, top {args.top}": (lambda i, n: answer_loss(top, i, n, bf16=True),
                                         top_optimizer),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for ids, prompt_len in rows:
        for name, (loss_of, opt) in sides.items():
            started = time.perf_counter()
            loss_of(ids, prompt_len).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - started)
    tokens = statistics.median(len(ids) for ids, _ in rows)
    for name, ts in times.items():
        print(f"{name:24s} median {statistics.median(ts):6.2f} s/step ({tokens:.0f} tokens)")
    full, answer, top_only = (statistics.median(ts) for ts in times.values())
    print(f"ratio fp32/bf16-answer: {full / answer:.2f}")
    print(f"ratio bf16-answer/top-{args.top}: {answer / top_only:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
