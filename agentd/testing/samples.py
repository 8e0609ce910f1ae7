"""Realistic ``TrajectoryRecord``s with every nested field filled, for tests and benchmarks.

The writer's throughput and the exporters' schemas only mean something against records that
look like the engine's: a multi-kilobyte prompt, a rule in YAML, a diff, token ids, logprobs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from agentd.records import (
    Action,
    AstGrepRule,
    AstGrepRun,
    Match,
    ModelOutput,
    PolicyInfo,
    Provenance,
    Reward,
    SandboxResult,
    Submit,
    Timing,
    TrajectoryRecord,
    Usage,
)

_RULE = """id: print-to-logging
language: python
rule:
  pattern: print($$$ARGS)
fix: logging.info($$$ARGS)
"""

_DIFF = """--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1,3 +1,3 @@
 def main():
-    print("hello")
+    logging.info("hello")
"""


def sample_action(step: int, *, final: bool = False) -> Action:
    """A plausible expert action: ``submit`` when final, else a rule or a run by parity."""
    if final:
        return Submit()
    if step % 2 == 0:
        return AstGrepRule(rule_yaml=_RULE, paths=["pkg/mod.py"])
    return AstGrepRun(pattern="print($A)", rewrite="logging.info($A)", lang="python")


def _sandbox(step: int) -> SandboxResult:
    return SandboxResult(
        exit_code=0, stdout=f"applied step {step}\n", stderr="", duration_ms=12.5 + step,
        changed_files=["pkg/mod.py"], diff=_DIFF,
        matches=[Match(file="pkg/mod.py", start_line=2, end_line=2, text='print("hello")',
                       replacement='logging.info("hello")')],
    )


def _model_output(action: Action, step: int) -> ModelOutput:
    raw_action = msgspec.json.encode(action).decode()
    raw = (f"<think>Step {step}: replace print calls with logging.</think>"
           f"<action>{raw_action}</action><state_update>{{\"decisions\": [\"step {step}\"]}}"
           "</state_update>")
    return ModelOutput(raw=raw, think=f"Step {step}: replace print calls with logging.",
                       action=action, state_update={"decisions": [f"step {step}"]})


def sample_record(
    run_id: str = "run-1",
    task_id: str = "task-0001",
    episode: int = 0,
    step: int = 0,
    *,
    final: bool = False,
    prompt_bytes: int = 2048,
    **overrides: Any,
) -> TrajectoryRecord:
    """One realistic step; ``final`` makes it a verified ``submit`` that ends the episode.

    ``overrides`` replace any top-level field (``reward=Reward(...)``, ``split="train"``).
    """
    action = sample_action(step, final=final)
    record = TrajectoryRecord(
        run_id=run_id, task_id=task_id, episode=episode, step=step,
        policy=PolicyInfo(kind="reference", model="replay", endpoint="", seed=7,
                          sampling={"temperature": 0.0, "top_p": 1.0}),
        prompt=("Refactor print calls to logging.\n" * (prompt_bytes // 34 + 1))[:prompt_bytes],
        state_before={"goals": ["use logging"], "history": [f"step {step - 1}"] if step else []},
        model_output=_model_output(action, step),
        reward=Reward(format_ok=True, exec_ok=True, progress=min(1.0, 0.5 * (step + 1)),
                      regression=0.0, final_match=final, srl_similarity=1.0,
                      total=1.0 + 0.25 * step),
        timing=Timing(generate_ms=3.25, sandbox_ms=12.5 + step),
        created_at="2026-01-02T03:04:05.678+00:00",
        split="dev", sandbox_result=_sandbox(step), verified=True, done=final,
        usage=Usage(prompt_tokens=512, completion_tokens=64, cost_usd=0.0001,
                    prompt_token_ids=[1, 2, 3], completion_token_ids=[4, 5],
                    logprobs=[-0.5, -0.25]),
        provenance=Provenance(config_hash="c0ffee", template_hash="t3mpl",
                              ast_grep_version="0.51.1", agentd_version="0.1.0",
                              corpus_version="0123456789abcdef"),
    )
    return msgspec.structs.replace(record, **overrides) if overrides else record


def sample_episode(run_id: str = "run-1", task_id: str = "task-0001", episode: int = 0,
                   steps: int = 3, **overrides: Any) -> list[TrajectoryRecord]:
    """A whole episode: steps ``0..steps-1``, the last one a verified ``submit``."""
    return [sample_record(run_id, task_id, episode, k, final=k == steps - 1, **overrides)
            for k in range(steps)]
