"""``ReferencePolicy``: replays a task's verified reference actions — no model, no GPU.

It is the embedded default so the whole engine runs on any machine, and its trajectories are
the expert demonstrations SRL learns from. Its ``think`` text says plainly that it is a replay.
After the last reference action it submits.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from agentd.policies.base import GenerateRequest, Generation
from agentd.records import Action, PolicyInfo, Submit, Task, action_to_dict

_encoder = msgspec.json.Encoder()


def _tool(action: Action) -> str:
    return str(action_to_dict(action)["tool"])


def _think(task: Task, step: int, action: Action) -> str:
    total = len(task.reference_actions)
    if isinstance(action, Submit):
        return (f"Replay of the verified reference solution: all {total} reference action(s) "
                "are applied, so I submit.")
    return (f"Replay of the verified reference solution, action {step + 1} of {total}: "
            f"{_tool(action)} from recipe {task.meta.recipe}.")


def _state_update(task: Task, step: int, action: Action) -> dict[str, Any]:
    update: dict[str, Any] = {
        "decisions": [f"step {step}: {_tool(action)}"],
        "next_focus": "submit" if step + 1 >= len(task.reference_actions) else
        f"reference action {step + 2}",
    }
    if step == 0:
        update["goals"] = [task.instruction[:200]]
        update["constraints"] = ["change only what the instruction asks for"]
    return update


def render_output(think: str, action: Action, state_update: dict[str, Any]) -> str:
    """The tagged model output, exactly as a well-behaved model would write it."""
    return (f"<think>{think}</think>\n<action>{_encoder.encode(action).decode()}</action>\n"
            f"<state_update>{_encoder.encode(state_update).decode()}</state_update>")


class ReferencePolicy:
    """Deterministic replay of ``task.reference_actions``, then ``submit``."""

    kind = "reference"

    def info(self, request: GenerateRequest | None = None) -> PolicyInfo:
        return PolicyInfo(kind="reference", model="reference-replay", endpoint="in-process",
                          seed=None, sampling={})

    async def generate(self, request: GenerateRequest) -> Generation:
        started = time.perf_counter()
        task, step = request.task, request.step
        actions = task.reference_actions
        action: Action = actions[step] if step < len(actions) else Submit()
        text = render_output(_think(task, step, action), action, _state_update(task, step, action))
        return Generation(text=text, model="reference-replay", endpoint="in-process",
                          answered_by="reference",
                          total_ms=(time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        return None
