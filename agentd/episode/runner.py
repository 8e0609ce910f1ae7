"""The step loop of one episode.

Per step: load state → render prompt → generate → parse → sandbox → reward → merge state →
commit (state, trajectory record and queue progress in one SQLite transaction). A parse
failure, an invalid action or a rejected state update is *data* in the step's record, never an
exception; only a policy that cannot answer (``PolicyError``) or a lost lease ends the episode
early. Between steps the runner looks at the engine's ``stopping`` event, so a drain finishes
the step in flight and hands the rest of the episode back to the queue.

The engine builds one runner (for its configuration) and shares it between its workers; what
the runner needs comes in typed and narrow (``wiring.py``): an ``EpisodeConfig``, the
policies, the store and a ``StepCommitter``, and nothing calls back up into the engine.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import msgspec

from agentd import __version__
from agentd.config import PromptTemplates
from agentd.episode import protocol
from agentd.episode.fit import fit_prompt
from agentd.episode.grammar import structured_output_regex
from agentd.episode.lease import Lease
from agentd.episode.prompts import (
    RenderedPrompt,
    observation_from_result,
    render_prompt,
)
from agentd.episode.reward import is_verified, score_step
from agentd.episode.windows import Focus, add_focus
from agentd.episode.wiring import EpisodeConfig, PolicySource, StepCommitter, StopSignal
from agentd.errors import EndpointTimeoutError
from agentd.logging import get_logger, log_context
from agentd.metrics import Metrics
from agentd.policies.base import GenerateRequest, Generation, Policy, PromptLimits
from agentd.profiles import ProviderProfile
from agentd.records import (
    Action,
    PolicyInfo,
    Provenance,
    ReadFile,
    Reward,
    SandboxResult,
    Submit,
    Timing,
    TrajectoryRecord,
    Verdict,
    action_to_dict,
)
from agentd.sandbox import Sandbox
from agentd.state import (
    MergeResult,
    State,
    StateStore,
    TokenCounter,
    fit_budget,
    merge,
    render,
)
from agentd.verify import Measure, Verifier

log = get_logger(__name__)

Outcome = Literal["done", "released"]


@dataclass(frozen=True)
class _Memory:
    """The state as this worker last committed it. The lease fences every write to the row,
    so it is the stored one: later steps need neither a load nor a second budget fit."""

    state: State
    version: int
    fitted: State  # the state within the token budget, and its rendered block
    rendered: str
    focus: Focus = field(default_factory=dict)  # where the model looked: windows grow there


@dataclass(frozen=True)
class StepOutcome:
    """What one step leaves behind for the next."""

    record: TrajectoryRecord
    files: dict[str, str]
    observation: str
    done: bool
    memory: _Memory
    measure: Measure


@dataclass(frozen=True)
class _Acted:
    """The parsed output, what the sandbox did with it, and its reward."""

    parsed: protocol.ParsedOutput | protocol.ParseError
    result: SandboxResult | None
    reward: Reward
    files: dict[str, str]
    observation: str
    done: bool
    sandbox_ms: float
    measure: Measure
    verdict: Verdict | None
    changed: bool  # the step changed the workspace's files

    @property
    def changed_files(self) -> dict[str, str] | None:
        """The workspace after the step, or None when the step left it as it was."""
        return self.files if self.changed else None

    @property
    def action(self) -> Action | None:
        return self.parsed.action if isinstance(self.parsed, protocol.ParsedOutput) else None

    @property
    def parse_error(self) -> str | None:
        return None if isinstance(self.parsed, protocol.ParsedOutput) else self.parsed.feedback()


@dataclass(frozen=True)
class EpisodeRunner:
    """Runs leased episodes; one per engine configuration, shared by every worker."""

    config: EpisodeConfig
    sandbox: Sandbox
    verifier: Verifier
    store: StateStore
    policies: PolicySource
    committer: StepCommitter
    metrics: Metrics
    stopping: StopSignal

    async def run(self, lease: Lease) -> Outcome:
        """Run ``lease`` from its next step to the end (or until asked to stop)."""
        task = lease.task
        files = lease.files if lease.files is not None else dict(task.files)
        workspace = await self.sandbox.prepare_workspace(f"{task.task_id}-{lease.episode}", files)
        try:
            return await self._steps(lease, workspace, files)
        finally:
            await self.sandbox.cleanup(workspace)

    async def _steps(self, lease: Lease, workspace: Path, files: dict[str, str]) -> Outcome:
        policy = await self.policies.policy(lease.policy)
        observation = "" if lease.next_step == 0 else "(the episode resumed after a restart)"
        max_steps = self._max_steps(lease)
        memory: _Memory | None = None
        measured: Measure | None = None
        for step in range(lease.next_step, max_steps):
            if self.stopping.is_set():
                return "released"
            with log_context(run_id=lease.run_id, task_id=lease.task_id,
                             episode=lease.episode, step=step):
                last = step == max_steps - 1
                measured = measured or await self.verifier.measure(lease.task, files)
                out = await self._step(lease, policy, workspace, _Files(files, measured),
                                       observation, step, last, memory)
            files, observation, memory = out.files, out.observation, out.memory
            measured = out.measure
            if out.done:
                return "done"
        return "done"

    async def _step(self, lease: Lease, policy: Policy, workspace: Path, files: _Files,
                    observation: str, step: int, last: bool,
                    memory: _Memory | None) -> StepOutcome:
        caps = self.config.state
        counter = self.policies.counter(lease.policy)
        with anyio.fail_after(self.config.step_timeout_s):
            memory = memory or await self._recall(lease, counter)
            prompt = await self._prompt(lease, policy, memory, observation, step)
            request = self._request(lease, policy, prompt.messages, step)
            generation = await self._generate(policy, request)
            acted = await self._act(lease, workspace, files, generation, step, last)
            merged = self._merge(memory.fitted, acted, step)
            # The stored state always fits: what the summariser folds away is recorded.
            fitted = await fit_budget(merged.state, counter, caps.token_budget, caps=caps)
            rejected = [*merged.rejected, *(f"folded: {d}" for d in fitted.dropped)]
            record = self._record(lease, policy, request, prompt, memory.state, generation,
                                  acted, rejected)
            await self.committer.commit(lease, step, fitted.state, memory.version, record,
                                        acted.changed_files, acted.done)
        self._count(record)
        read = acted.action if isinstance(acted.action, ReadFile) else None
        focus = add_focus(memory.focus, acted.result.matches if acted.result else [], read)
        after = _Memory(fitted.state, memory.version + 1, fitted.state, fitted.rendered, focus)
        return StepOutcome(record, acted.files, acted.observation, acted.done, after,
                           acted.measure)

    async def _prompt(self, lease: Lease, policy: Policy, memory: _Memory, observation: str,
                      step: int) -> RenderedPrompt:
        """The step's prompt, made to fit the endpoint's context with room for the answer."""
        templates = self._templates(lease.policy)

        def render(files_chars: int, with_few_shot: bool) -> RenderedPrompt:
            return render_prompt(
                templates, lease.task, memory.rendered, observation or None, step,
                max_steps=self._max_steps(lease), files_chars=files_chars, focus=memory.focus,
                few_shot=self.policies.few_shot(lease.policy) if with_few_shot else None)

        context = policy.context_window() if isinstance(policy, PromptLimits) else None
        if context is None or not isinstance(policy, PromptLimits):
            return render(templates.files_preview_chars, True)
        fitted = await fit_prompt(render, files_chars=templates.files_preview_chars,
                                  context=context, reserve=policy.reserved_tokens(),
                                  count=policy.count_chat)
        if fitted.files_chars < templates.files_preview_chars or not fitted.few_shot:
            self.metrics.inc("prompts_shrunk")
        return fitted.prompt

    async def _recall(self, lease: Lease, counter: TokenCounter) -> _Memory:
        """The stored state (first step of this lease) and its block within the budget.

        A new episode's empty state has nothing to fold, so only a resumed one is fitted here
        (the budget may have changed across the restart); every step then fits once."""
        caps = self.config.state
        stored = await self.store.load(lease.run_id, lease.task_id, lease.episode)
        if stored.state.is_empty():
            return _Memory(stored.state, stored.version, stored.state, render(stored.state))
        block = await fit_budget(stored.state, counter, caps.token_budget, caps=caps)
        return _Memory(stored.state, stored.version, block.state, block.rendered)

    def _merge(self, state: State, acted: _Acted, step: int) -> MergeResult:
        """The model's update, then one history line the runner writes itself (one pass)."""
        update = acted.parsed.state_update if isinstance(acted.parsed, protocol.ParsedOutput) \
            else None
        return merge(state, update, self.config.state, history=_history_line(step, acted))

    def _max_steps(self, lease: Lease) -> int:
        return min(lease.task.max_steps, self.config.max_steps)

    def _templates(self, policy_name: str) -> PromptTemplates:
        return self.config.teacher_prompts if policy_name == "teacher" else self.config.prompts

    def _request(self, lease: Lease, policy: Policy, messages: list[dict[str, str]],
                 step: int) -> GenerateRequest:
        sampling = self.config.sampling
        structured = None
        if policy.kind == "actor" and sampling.structured_output:
            # With vLLM's reasoning parser the grammar applies to the answer only: no <think>.
            # <think> is left unbounded: a bounded repetition makes decoding ~10× slower.
            think = _profile(policy).reasoning != "field"
            structured = {"regex": structured_output_regex(think=think)}
        seed = None if sampling.seed is None else sampling.seed + lease.episode
        return GenerateRequest(messages=messages, task=lease.task, step=step,
                               episode=lease.episode, seed=seed, structured_output=structured)

    async def _generate(self, policy: Policy, request: GenerateRequest) -> Generation:
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.config.llm_timeout_s):
                generation = await policy.generate(request)
        except TimeoutError:
            self.metrics.inc("llm_timeouts")
            raise EndpointTimeoutError("the policy did not answer in time") from None
        self.metrics.observe("actor_latency", (time.perf_counter() - started) * 1000)
        return generation

    async def _act(self, lease: Lease, workspace: Path, start: _Files,
                   generation: Generation, step: int, last: bool) -> _Acted:
        parsed = protocol.parse_completion(generation.text, generation.finish_reason,
                                           think_optional=generation.native_reasoning)
        task = lease.task
        result: SandboxResult | None = None
        action: Action | None = None
        sandbox_ms = 0.0
        current = start.files
        if isinstance(parsed, protocol.ParsedOutput):
            action = parsed.action
            started = time.perf_counter()
            applied = await self.sandbox.act(workspace, action, task_id=task.task_id,
                                             test_spec=task.test_spec)
            result = applied.result
            sandbox_ms = (time.perf_counter() - started) * 1000
            self.metrics.observe("sandbox_latency", sandbox_ms)
            # The sandbox's after-snapshot: a step that changed nothing keeps the files as
            # they are, and nothing walks the workspace again.
            current = start.files if applied.files is None else applied.files
        else:
            self.metrics.inc("parse_failures")
        changed = current != start.files
        # Only a step that changed files needs its workspace measured again (rules in the jail).
        now = await self.verifier.measure(task, current) if changed else start.measure
        reference = task.reference_actions[step] if step < len(task.reference_actions) else Submit()
        facts = await self.verifier.facts(task)
        reward = score_step(facts=facts, previous=start.measure, current=now, action=action,
                            result=result, reference=reference, format_ok=action is not None)
        done = isinstance(action, Submit) or last
        verdict = None
        if done:
            verdict = await self.verifier.verdict(task, current)
            reward = msgspec.structs.replace(reward, final_match=verdict.accepted)
        observation = observation_from_result(
            result, parsed if isinstance(parsed, protocol.ParseError) else None)
        return _Acted(parsed, result, reward, current, observation, done, sandbox_ms, now,
                      verdict, changed)

    def _record(self, lease: Lease, policy: Policy, request: GenerateRequest,
                prompt: RenderedPrompt, state_before: State, generation: Generation,
                acted: _Acted, rejected: list[str]) -> TrajectoryRecord:
        return TrajectoryRecord(
            run_id=lease.run_id, task_id=lease.task_id, episode=lease.episode,
            step=request.step, split=lease.split,
            policy=_policy_info(policy, request, generation),
            prompt=prompt.text, state_before=dict(state_before.to_dict()),
            model_output=protocol.model_output(generation.text, acted.parsed,
                                               reasoning=generation.reasoning),
            parse_error=acted.parse_error, state_rejected=rejected,
            sandbox_result=acted.result, reward=acted.reward,
            verified=is_verified(acted.reward, acted.result, action=acted.action),
            done=acted.done, verdict=acted.verdict,
            timing=Timing(generate_ms=generation.total_ms, sandbox_ms=acted.sandbox_ms),
            usage=generation.usage,
            provenance=Provenance(config_hash=self.config.config_hash,
                                  template_hash=prompt.template_hash,
                                  ast_grep_version=self.config.ast_grep_version,
                                  agentd_version=__version__,
                                  corpus_version=lease.corpus_version),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        )

    def _count(self, record: TrajectoryRecord) -> None:
        self.metrics.inc("steps")
        if record.verified:
            self.metrics.inc("verified_steps")
        if record.sandbox_result is not None and record.sandbox_result.error_kind != "none":
            self.metrics.inc("sandbox_failures")
        if record.done and record.reward.final_match:
            self.metrics.inc("final_matches")


@dataclass(frozen=True)
class _Files:
    """The workspace's files before a step and their measure against the task."""

    files: dict[str, str]
    measure: Measure


def _policy_info(policy: Policy, request: GenerateRequest, generation: Generation) -> PolicyInfo:
    """The policy's provenance, naming the endpoint that actually answered (fallbacks show)."""
    info = policy.info(request)
    return msgspec.structs.replace(
        info, model=generation.model or info.model,
        endpoint=generation.answered_by or generation.endpoint or info.endpoint)


def _profile(policy: Policy) -> ProviderProfile:
    """The policy's endpoint profile (LLM policies carry one; others count as plain)."""
    profile = getattr(policy, "profile", None)
    return profile if isinstance(profile, ProviderProfile) else ProviderProfile(kind="openai")


def _history_line(step: int, acted: _Acted) -> str:
    if acted.action is None:
        return f"step {step}: output rejected ({acted.parse_error or 'parse error'})"[:200]
    tool = action_to_dict(acted.action)["tool"]
    result = acted.result
    if result is None:
        return f"step {step}: {tool}"
    changed = len(result.changed_files)
    return (f"step {step}: {tool} -> exit {result.exit_code}, {result.error_kind}, "
            f"{changed} file(s) changed, progress {acted.reward.progress:.2f}")
