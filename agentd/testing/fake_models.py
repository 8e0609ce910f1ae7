"""Scripted "models" for the fake servers: they solve real tasks the way a provider's model
would write the answer, with native reasoning in that model's habit.

``ReferenceModel(tasks, habit)`` is a ``FakeVLLM`` reply function. It finds the task and step
in the prompt (the last user message names the instruction, the files and ``Step N of``) and
answers that step's reference action (``submit`` after the last one). Habits:

* ``protocol``          only the protocol's blocks (Qwen3 with thinking off);
* ``native``            one leading ``<think>`` that is both its native reasoning and the
                        protocol's think (Qwen3 with thinking on, with or without vLLM's parser);
* ``native_and_protocol``  its own ``<think>`` first, then the protocol's three blocks (MiniMax
                        M2 and GLM-4.6, which think natively and also follow the prompt).

The native reasoning mentions ``a < b`` on purpose: reasoning about code needs ``<``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from agentd.episode.protocol import render
from agentd.records import Action, Submit, Task

Habit = Literal["protocol", "native", "native_and_protocol"]
_STEP = re.compile(r"Step (\d+) of")
NATIVE = "The task asks for one rewrite; if a < b holds the order stays. I act on the matches."


class ReferenceModel:
    """A reply function that answers each step with the task's reference action."""

    def __init__(self, tasks: Iterable[Task], habit: Habit = "protocol") -> None:
        self.tasks = list(tasks)
        self.habit = habit
        self.unknown = 0  # prompts it could not place (a test asserts none)

    def __call__(self, body: dict[str, Any]) -> str:
        prompt = _last_user(body)
        task = self._task(prompt)
        step = int(m.group(1)) if (m := _STEP.search(prompt)) else 1
        if task is None:
            self.unknown += 1
            action: Action = Submit()
        else:
            actions = task.reference_actions
            action = actions[step - 1] if step <= len(actions) else Submit()
        return self._write(action, step)

    def _task(self, prompt: str) -> Task | None:
        for task in self.tasks:
            first = min(task.files) if task.files else ""
            if task.instruction.strip() in prompt and f"- {first} (" in prompt:
                return task
        return None

    def _write(self, action: Action, step: int) -> str:
        protocol_think = f"Step {step}: the next action of the plan."
        update = {"decisions": [f"step {step}: {type(action).__name__}"]}
        if self.habit == "protocol":
            return render(protocol_think, action, update)
        if self.habit == "native":
            return render(NATIVE, action, update)
        return f"<think>\n{NATIVE}\n</think>\n\n" + render(protocol_think, action, update)


def _last_user(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else str(body.get("prompt", ""))
