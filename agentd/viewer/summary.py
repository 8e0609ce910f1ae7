"""What the listings know of an episode: a few fields, so 10,000 episodes cost little memory."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from agentd.exports.extras import Step, episode_accepted, episode_reward

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    """A file-name-safe, collision-free name for an id that may hold any character."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{_SAFE.sub('_', text)[:48]}-{digest}"


@dataclass(frozen=True)
class EpisodeSummary:
    """One episode as the listings show it; ``number`` names its page."""

    number: int
    run_id: str
    task_id: str
    episode: int
    policy: str
    split: str
    steps: int
    verified_steps: int
    reward: float
    accepted: bool
    complete: bool

    @property
    def href(self) -> str:
        """Its page, relative to the site root."""
        return f"episode/e{self.number:06d}.html"

    @property
    def tags(self) -> list[str]:
        """Filter tags: accepted or failed, and the policy."""
        return ["accepted" if self.accepted else "failed", f"policy-{slug(self.policy)}"]


def summarise(number: int, steps: list[Step]) -> EpisodeSummary:
    first = steps[0].record
    complete = steps[-1].record.done and \
        [s.record.step for s in steps] == list(range(len(steps)))
    return EpisodeSummary(
        number=number, run_id=first.run_id, task_id=first.task_id, episode=first.episode,
        policy=f"{first.policy.kind}/{first.policy.model}", split=first.split or "-",
        steps=len(steps), verified_steps=sum(s.record.verified for s in steps),
        reward=episode_reward(steps), accepted=episode_accepted(steps), complete=complete)
