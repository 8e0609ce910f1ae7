"""Fine-tune a small causal LM on an agentd SFT export, on the CPU; resumable after a kill.

Run it in the trainer's own virtualenv (``scripts/setup_train_cpu.sh train ARGS``): torch and
transformers never enter the daemon's environment or import path.

    train_sft.py --data exports/loop/sft.jsonl --model BASE_DIR --out runs/sft [--steps 120]

Input: the rows of ``agentd trajectories export --format sft`` (the ``messages`` shape: system,
user, assistant). Each row is rendered with the model's own chat template, as vLLM renders the
prompt at serving time, and only the assistant turn (and its end-of-turn token) is learned.

Full fine-tuning, not LoRA: at 135M parameters the whole model and its AdamW state take about
2 GB, a LoRA backward pass still runs through every layer (so it saves little time on a CPU),
full tuning needs fewer steps for the same loss, and the result is already the plain Hugging
Face checkpoint vLLM serves: there is nothing to merge. ``--train-layers N`` trains only the
top N decoder layers (the rest frozen): unlike LoRA, that cuts the backward pass itself, 2.04x
per step with N = 10 of 30 (``benchmarks/train_step.py``), so twice the rows fit the same time.

Output under ``--out``:

* ``train_log.jsonl``: one line per optimiser step (step, loss, lr, tokens, seconds);
* ``checkpoints/step-N/``: the model, the optimiser and the progress every ``--save-every``
  steps and on SIGTERM/SIGINT, written to a temporary directory and renamed when complete; a
  new start resumes from the newest one (the last two are kept);
* ``final/``: the tuned checkpoint and tokenizer, written last (``agentd_train.json`` beside it
  says what it was trained on).

Exit codes: 0 trained, 1 the training failed, 2 bad input, 143 stopped by a signal (resumable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

MAX_ROW_BYTES = 4 << 20  # one SFT row; anything larger is not a training row of ours
KEEP_CHECKPOINTS = 2


class BadInput(Exception):
    """The data or the arguments are wrong; one line, exit 2."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train_sft.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="SFT rows (JSON lines, messages)")
    p.add_argument("--model", type=Path, required=True, help="base Hugging Face checkpoint")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--steps", type=int, default=120, help="optimiser steps")
    p.add_argument("--accum", type=int, default=1, help="rows per optimiser step")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=int, default=8, help="linear warm-up steps")
    p.add_argument("--max-len", type=int, default=2048,
                   help="tokens per row; longer rows are dropped (and counted)")
    p.add_argument("--save-every", type=int, default=20, help="checkpoint every N steps")
    p.add_argument("--train-layers", type=int, default=0,
                   help="train only the top N decoder layers and the final norm (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false",
                   help="compute in float32 (default: bfloat16 autocast, weights in float32)")
    args = p.parse_args(argv)
    for name in ("steps", "accum", "max_len", "save_every"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be at least 1")
    if not args.lr > 0:
        raise BadInput("--lr must be positive")
    if args.train_layers < 0:
        raise BadInput("--train-layers must be 0 (all) or a positive number of layers")
    return args


def read_rows(path: Path) -> list[list[dict[str, str]]]:
    """The ``messages`` of every row; a row in another shape is an input error."""
    if not path.is_file():
        raise BadInput(f"no data file {path}")
    rows = []
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if len(line) > MAX_ROW_BYTES:
                raise BadInput(f"{path}:{number}: a row over {MAX_ROW_BYTES} bytes")
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (ValueError, KeyError, TypeError):
                raise BadInput(f"{path}:{number}: not an SFT row with 'messages' (export with "
                               "--format sft --sft-shape messages)") from None
            if (not isinstance(messages, list) or len(messages) < 2
                    or messages[-1].get("role") != "assistant"):
                raise BadInput(f"{path}:{number}: 'messages' must end with the assistant turn")
            rows.append([{"role": str(m["role"]), "content": str(m["content"])}
                         for m in messages])
    if not rows:
        raise BadInput(f"{path}: no rows")
    return rows


def encode(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], int]:
    """(token ids, length of the prompt part): the chat template rendered as text, then
    tokenised without added special tokens, as vLLM's chat endpoint does; the prompt part is
    what the template renders for generation, the rest the assistant turn as it closes it."""
    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt_text = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True,
                                                tokenize=False)
    full_text = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = ids(prompt_text)
    if full_text.startswith(prompt_text):
        full = prompt + ids(full_text[len(prompt_text):])
    else:  # a template that renders the history differently once the answer is there
        full = prompt + ids(messages[-1]["content"]) + [tokenizer.eos_token_id]
    return full, len(prompt)


class Progress:
    """Where the training is: what a checkpoint stores besides the weights."""

    def __init__(self, step: int = 0, rows_seen: int = 0) -> None:
        self.step = step
        self.rows_seen = rows_seen


def row_order(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < args.warmup:
        return float(args.lr * (step + 1) / args.warmup)
    span = max(1, args.steps - args.warmup)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, (step - args.warmup) / span)))
    return float(args.lr * (0.1 + 0.9 * cos))


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for path in (out / "checkpoints").glob("step-*"):
        if path.suffix != ".tmp" and (path / "COMPLETE").exists():
            found.append((int(path.name.split("-", 1)[1]), path))
    return sorted(found)


def save_checkpoint(out: Path, model: Any, optimizer: Any, progress: Progress) -> Path:
    import torch

    final = out / "checkpoints" / f"step-{progress.step}"
    if final.exists():
        return final
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    torch.save({"optimizer": optimizer.state_dict(), "step": progress.step,
                "rows_seen": progress.rows_seen, "torch_rng": torch.get_rng_state()},
               tmp / "trainer_state.pt")
    (tmp / "COMPLETE").write_text("ok\n")
    tmp.replace(final)
    for _, old in checkpoints(out)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def trim_log(path: Path, step: int) -> None:
    """Drop the log lines of steps after ``step``: a resumed run does them again."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by the kill
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)


def data_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


Rows = list[tuple[list[int], int]]  # (token ids, prompt length) per kept row


def load_rows(args: argparse.Namespace, tokenizer: Any) -> Rows:
    encoded = [encode(tokenizer, m) for m in read_rows(args.data)]
    kept = [(ids, n) for ids, n in encoded if len(ids) <= args.max_len and n < len(ids)]
    if not kept:
        raise BadInput(f"every row is longer than --max-len {args.max_len} tokens")
    print(f"train_sft: {len(kept)} rows ({len(encoded) - len(kept)} over {args.max_len} "
          f"tokens dropped), {args.steps} steps × {args.accum} rows", file=sys.stderr)
    return kept


def load_model(args: argparse.Namespace) -> tuple[Any, Any, Progress]:
    """The model and optimiser, from the newest checkpoint when there is one."""
    import torch
    from transformers import AutoModelForCausalLM

    resume = checkpoints(args.out)
    source = resume[-1][1] if resume else args.model
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    model.train()
    trainable = freeze_below(model, args.train_layers)
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    if not resume:
        return model, optimizer, Progress()
    state = torch.load(source / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    print(f"train_sft: resumed from {source} (step {state['step']})", file=sys.stderr)
    return model, optimizer, Progress(state["step"], state["rows_seen"])


def freeze_below(model: Any, top: int) -> list[Any]:
    """The parameters to train: all of them, or with ``top`` > 0 only the top ``top`` decoder
    layers and the final norm. Autograd then stops at the lowest trainable layer, so the
    backward pass (two thirds of a step) runs through ``top`` layers instead of all, and AdamW
    updates a fraction of the weights. The embedding stays frozen, and with it the output
    layer it is tied to."""
    if not top:
        return list(model.parameters())
    layers = model.model.layers
    if top > len(layers):
        raise BadInput(f"--train-layers {top}: the model has {len(layers)} layers")
    for param in model.parameters():
        param.requires_grad_(False)
    trainable = [p for layer in layers[-top:] for p in layer.parameters()]
    trainable += list(model.model.norm.parameters())
    for param in trainable:
        param.requires_grad_(True)
    return trainable


def answer_loss(model: Any, ids: list[int], prompt_len: int, *, bf16: bool) -> Any:
    """Mean cross-entropy of the answer tokens. Only the answer's positions get logits: the
    prompt is most of a row, and a 49k-word output layer over it is a fifth of the work."""
    import torch

    input_ids = torch.tensor([ids])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=input_ids, logits_to_keep=len(ids) - prompt_len + 1).logits
    # The logit at position p predicts token p + 1: the kept positions prompt_len - 1 ..
    # len - 2 predict the answer tokens prompt_len .. len - 1.
    return torch.nn.functional.cross_entropy(logits[0, :-1].float(), input_ids[0, prompt_len:])


def train_step(args: argparse.Namespace, model: Any, optimizer: Any, rows: Rows,
               progress: Progress) -> dict[str, Any]:
    """One optimiser step over ``--accum`` rows; returns its log entry."""
    import torch

    started = time.monotonic()
    lr = lr_at(progress.step, args)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_sum, tokens = 0.0, 0
    for _ in range(args.accum):
        epoch, position = divmod(progress.rows_seen, len(rows))
        ids, prompt_len = rows[row_order(len(rows), args.seed, epoch)[position]]
        loss = answer_loss(model, ids, prompt_len, bf16=args.bf16)
        (loss / args.accum).backward()
        loss_sum += float(loss.detach())
        tokens += len(ids)
        progress.rows_seen += 1
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    progress.step += 1
    return {"step": progress.step, "loss": round(loss_sum / args.accum, 5), "lr": lr,
            "tokens": tokens, "seconds": round(time.monotonic() - started, 3),
            "epoch": round(progress.rows_seen / len(rows), 4)}


def train(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if not (args.model / "config.json").exists():
        raise BadInput(f"{args.model}: not a Hugging Face checkpoint (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = load_rows(args, tokenizer)
    model, optimizer, progress = load_model(args)
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["signal"] = signum  # finish the step in hand, checkpoint, leave

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "train_log.jsonl"
    trim_log(log_path, progress.step)
    with log_path.open("a", encoding="utf-8") as log:
        while progress.step < args.steps:
            if stop["signal"]:
                save_checkpoint(args.out, model, optimizer, progress)
                print(f"train_sft: stopped at step {progress.step}; run again to resume",
                      file=sys.stderr)
                return 143
            entry = train_step(args, model, optimizer, rows, progress)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            eta = entry["seconds"] * (args.steps - progress.step) / 60
            print(f"step {progress.step}/{args.steps} loss {entry['loss']:.4f} "
                  f"lr {entry['lr']:.2e} {entry['seconds']:.1f} s/step eta {eta:.1f} min",
                  file=sys.stderr, flush=True)
            if progress.step % args.save_every == 0 or progress.step == args.steps:
                save_checkpoint(args.out, model, optimizer, progress)
    write_final(args, model, tokenizer, len(rows))
    return 0


def write_final(args: argparse.Namespace, model: Any, tokenizer: Any, rows: int) -> None:
    final = args.out / "final"
    tmp = final.with_name("final.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "agentd_train.json").write_text(json.dumps({
        "base_model": str(args.model), "data": str(args.data), "data_sha256": data_hash(args.data),
        "rows": rows, "steps": args.steps, "accum": args.accum, "lr": args.lr,
        "max_len": args.max_len, "seed": args.seed,
        "method": (f"fine-tuning of the top {args.train_layers} layers" if args.train_layers
                   else "full fine-tuning")}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.replace(final)
    print(f"train_sft: wrote {final}", file=sys.stderr)


def main(argv: list[str]) -> int:
    try:
        return train(parse_args(argv))
    except BadInput as exc:
        print(f"train_sft: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
