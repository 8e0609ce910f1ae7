"""Cost of refusing hostile model output, next to the cost of accepting a normal one.

    .venv/bin/python benchmarks/hostile_inputs.py [--runs 20]

Each pathological output (agentd.testing.hostile) is parsed interleaved with a well-formed
output padded to the same length, so machine noise hits both sides alike; the ratio says how
much worse than linear the parser gets on input built to hurt it (about 1 is the goal, a
regex that backtracks shows up as 100+). The same is done for the SRL similarity of two 60 KB
patterns against two patterns of normal size. These were timing asserts in the unit tests;
speed belongs here, where a slow machine cannot fail the suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from agentd.episode.protocol import parse
from agentd.episode.similarity import srl_similarity
from agentd.records import AstGrepRun
from agentd.testing.hostile import GOOD_OUTPUT, huge_run_actions, pathological_outputs


def _padded_good(length: int) -> str:
    """A well-formed output of ``length`` characters: the think block carries the padding."""
    pad = max(0, length - len(GOOD_OUTPUT))
    return GOOD_OUTPUT.replace("rename print", "rename print" + " x" * (pad // 2), 1)


def _median_ms(fn: Callable[[], object], other: Callable[[], object],
               runs: int) -> tuple[float, float]:
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(runs):
        for target, sink in ((fn, ours), (other, theirs)):
            started = time.perf_counter()
            target()
            sink.append((time.perf_counter() - started) * 1000)
    return statistics.median(ours), statistics.median(theirs)


def main(runs: int) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, {runs} runs each")
    print(f"{'input':34}{'hostile ms':>12}{'normal ms':>12}{'ratio':>8}")
    for i, raw in enumerate(pathological_outputs()):
        good = _padded_good(len(raw))
        hostile_ms, normal_ms = _median_ms(lambda r=raw: parse(r), lambda g=good: parse(g), runs)
        print(f"{f'parse #{i} ({len(raw)} chars)':34}{hostile_ms:12.3f}{normal_ms:12.3f}"
              f"{hostile_ms / max(normal_ms, 1e-6):8.2f}")
    huge, other = huge_run_actions()
    small = AstGrepRun(pattern="print($A)", rewrite="log($A)", lang="python")
    near = AstGrepRun(pattern="print($A)", rewrite="logger($A)", lang="python")
    hostile_ms, normal_ms = _median_ms(lambda: srl_similarity(huge, other),
                                       lambda: srl_similarity(near, small), max(3, runs // 4))
    print(f"{'srl_similarity 60 KB vs 20 chars':34}{hostile_ms:12.3f}{normal_ms:12.3f}"
          f"{hostile_ms / max(normal_ms, 1e-6):8.1f}")
    print("srl: the 60 KB pair is capped at MAX_COMPARE_CHARS; uncapped it takes minutes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    main(parser.parse_args().runs)
