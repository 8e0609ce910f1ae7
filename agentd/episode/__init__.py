"""The episode: protocol (parse/render of tagged model output), prompts, rewards, the step loop."""

from __future__ import annotations
