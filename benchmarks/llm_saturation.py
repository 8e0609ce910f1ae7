"""Token throughput of ``ActorPool`` next to a plain httpx loop, against a real vLLM server.

Both sides fire the same chat requests (same body, same prompts, greedy decoding) at the same
concurrency, in one process, alternating order between rounds so that load drift on a shared
machine hits both equally. Throughput is completion tokens (from the server's usage) per wall
second; the ratio pool/raw shows what routing, limits, retries and bookkeeping cost.

    .venv/bin/python benchmarks/llm_saturation.py                 # starts the CPU vLLM server
    .venv/bin/python benchmarks/llm_saturation.py --base-url http://127.0.0.1:8100
    .venv/bin/python benchmarks/llm_saturation.py --fake --per-worker 100   # client cost only

``--fake`` points both sides at the in-process-thread fake server, whose answers cost no model
time, so what is left is the client side: the pool's per-request overhead next to raw httpx.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

import anyio
import httpx

from agentd.config import ActorConfig, ClientConfig, SamplingConfig
from agentd.policies.base import GenerateRequest
from agentd.policies.pool import ActorPool
from agentd.policies.wire import build_body, params_from_request
from agentd.profiles import DEFAULT_PROFILES
from agentd.testing.fake_vllm import FakeVLLM
from agentd.testing.tasks import empty_task
from agentd.testing.vllm_cpu import SERVED_NAME, VLLMServer

TASK = empty_task("bench")
TOPICS = [
    "a lighthouse",
    "a compiler",
    "the sea",
    "a garden",
    "a robot",
    "a city at night",
    "a mountain",
    "a library",
    "an old clock",
    "the rain",
    "a train",
    "a chess game",
    "a forest",
    "a bakery",
    "a comet",
    "a river",
]

Call = Callable[[GenerateRequest], Awaitable[tuple[int, float]]]


@dataclass
class Run:
    side: str
    concurrency: int
    requests: int
    tokens: int
    wall_s: float
    p50_ms: float
    client_cpu_s: float  # this process's CPU time during the run: what the client side costs

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s


def requests_for(n: int, max_tokens: int) -> list[GenerateRequest]:
    return [
        GenerateRequest(
            messages=[{"role": "user", "content": f"Write a long story about {TOPICS[i % 16]}."}],
            task=TASK,
            step=i,
            max_tokens=max_tokens,
            temperature=0.0,
            seed=0,
        )
        for i in range(n)
    ]


async def drive(
    call: Call, reqs: list[GenerateRequest], concurrency: int
) -> tuple[int, float, float]:
    """Run ``reqs`` through ``call`` with ``concurrency`` workers; (tokens, wall s, p50 ms)."""
    pending = list(reversed(reqs))
    tokens = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal tokens
        while pending:
            n, ms = await call(pending.pop())
            tokens += n
            latencies.append(ms)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return tokens, time.perf_counter() - started, statistics.median(latencies)


PROFILE = DEFAULT_PROFILES[ActorConfig(name="a", port=1).profile]


def raw_call(http: httpx.AsyncClient, base_url: str, sampling: SamplingConfig) -> Call:
    config = ClientConfig()

    async def call(req: GenerateRequest) -> tuple[int, float]:
        body = build_body(
            # The same profile the pool's actor uses, so both paths send the same body.
            params_from_request(req, sampling, PROFILE),
            model=SERVED_NAME,
            stream=False,
            vllm=True,
            return_token_ids=config.return_token_ids,
        )
        started = time.perf_counter()
        resp = await http.post(f"{base_url}/v1/chat/completions", json=body)
        resp.raise_for_status()
        return resp.json()["usage"]["completion_tokens"], (time.perf_counter() - started) * 1000

    return call


def pool_call(pool: ActorPool) -> Call:
    async def call(req: GenerateRequest) -> tuple[int, float]:
        gen = await pool.generate(req)
        return gen.usage.completion_tokens, gen.total_ms

    return call


async def measure(base_url: str, concurrency: int, args: argparse.Namespace) -> list[Run]:
    sampling = SamplingConfig(temperature=0.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
    url = urlparse(base_url)
    actor = ActorConfig(
        name="cpu0",
        host=url.hostname or "127.0.0.1",
        port=url.port or 80,
        served_model_name=SERVED_NAME,
        max_concurrent_requests=concurrency,
    )
    pool = ActorPool([actor], ClientConfig(timeout_s=600, max_retries=0), sampling)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    runs: list[Run] = []
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        sides = {"raw": raw_call(http, base_url, sampling), "pool": pool_call(pool)}
        for rnd in range(args.rounds):
            for side in ("raw", "pool") if rnd % 2 == 0 else ("pool", "raw"):
                reqs = requests_for(concurrency * args.per_worker, args.max_tokens)
                cpu = time.process_time()
                tokens, wall, p50 = await drive(sides[side], reqs, concurrency)
                cpu = time.process_time() - cpu
                runs.append(Run(side, concurrency, len(reqs), tokens, wall, p50, cpu))
                print(
                    f"  c={concurrency:<3} {side:<5} round {rnd}: {tokens / wall:7.1f} tok/s "
                    f"({tokens} tokens in {wall:.1f}s, p50 {p50:.0f} ms, "
                    f"client CPU {cpu * 1000:.0f} ms)",
                    flush=True,
                )
    await pool.aclose()
    return runs


def summarise(runs: list[Run]) -> list[dict[str, float]]:
    """Totals per side, and the median of per-round ratios (adjacent runs share the load)."""
    rows = []
    for c in sorted({r.concurrency for r in runs}):
        mine = [r for r in runs if r.concurrency == c]
        side = {s: [r for r in mine if r.side == s] for s in ("raw", "pool")}
        tok_s = {s: sum(r.tokens for r in rs) / sum(r.wall_s for r in rs) for s, rs in side.items()}
        pairs = [p.tok_s / r.tok_s for r, p in zip(side["raw"], side["pool"], strict=True)]
        rows.append(
            {
                "concurrency": c,
                "raw_tok_s": round(tok_s["raw"], 1),
                "pool_tok_s": round(tok_s["pool"], 1),
                "ratio": round(tok_s["pool"] / tok_s["raw"], 3),
                "median_round_ratio": round(statistics.median(pairs), 3),
            }
        )
    return rows


async def main_async(args: argparse.Namespace, base_url: str) -> list[Run]:
    async with httpx.AsyncClient(timeout=600) as http:  # first requests are slower: warm up
        await raw_call(http, base_url, SamplingConfig(max_tokens=8))(requests_for(1, 8)[0])
    runs: list[Run] = []
    for c in args.concurrency:
        runs += await measure(base_url, c, args)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an already running vLLM server (default: start one)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--per-worker", type=int, default=2, help="requests per worker per run")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4, help="raw/pool pairs per concurrency")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--fake", action="store_true", help="measure against the fake server")
    args = parser.parse_args()
    if args.fake:
        with FakeVLLM(model=SERVED_NAME, default_reply=" ".join(["tok"] * args.max_tokens)) as f:
            runs = anyio.run(main_async, args, f.base_url)
    else:
        server = VLLMServer.external(args.base_url) if args.base_url else VLLMServer.start()
        with server:
            if server.ready_s:
                print(f"vLLM setup {server.setup_s:.0f}s, ready in {server.ready_s:.0f}s")
            runs = anyio.run(main_async, args, server.base_url)
    rows = summarise(runs)
    print(
        f"\n{'concurrency':>11} {'httpx tok/s':>12} {'ActorPool tok/s':>16} {'ratio':>6} "
        f"{'median round ratio':>19}"
    )
    for row in rows:
        print(
            f"{row['concurrency']:>11} {row['raw_tok_s']:>12} {row['pool_tok_s']:>16} "
            f"{row['ratio']:>6} {row['median_round_ratio']:>19}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"summary": rows, "runs": [asdict(r) for r in runs]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
