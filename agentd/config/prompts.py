"""``configs/prompts.yaml`` and ``configs/teacher_prompts.yaml``: the prompt templates."""

from __future__ import annotations

import hashlib
import re

from pydantic import (
    Field,
    model_validator,
)

from agentd.config.base import Model

PROMPT_PLACEHOLDERS = frozenset({
    "instruction", "language", "files", "task_id", "step", "max_steps", "steps_left", "state",
    "observation",
})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptTemplates(Model):
    """``configs/prompts.yaml`` and ``configs/teacher_prompts.yaml`` (see ``episode.prompts``).

    Templates hold ``{name}`` placeholders from ``PROMPT_PLACEHOLDERS``; every other brace is
    literal, so JSON examples need no escaping. An unknown ``{name}`` is a config error (a typo
    would otherwise reach the model verbatim).
    """

    version: str = "1"
    system: str = ""
    task: str = ""
    state: str = "{state}"
    observation: str = "{observation}"
    no_observation: str = ""
    format_reminder: str = ""
    few_shot: int = Field(default=0, ge=0, le=16)
    files_preview_chars: int = Field(default=4000, ge=0, le=200_000)

    @model_validator(mode="after")
    def _known_placeholders(self) -> PromptTemplates:
        for name in ("system", "task", "state", "observation", "no_observation",
                     "format_reminder"):
            unknown = set(_PLACEHOLDER.findall(getattr(self, name))) - PROMPT_PLACEHOLDERS
            if unknown:
                raise ValueError(f"{name}: unknown placeholder(s) {sorted(unknown)}")
        return self

    @property
    def template_hash(self) -> str:
        """Short sha256 of every template and setting: recorded with each step's prompt."""
        blob = self.model_dump_json().encode()
        return hashlib.sha256(blob).hexdigest()[:16]
