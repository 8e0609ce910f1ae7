"""An episode's page: a header with the outcome and the verifier's checks, then one folding
section per step (``#step-N``) with its reasoning, action, states, diff, result and rewards."""

from __future__ import annotations

from typing import Any

import msgspec

from agentd.exports.extras import Step, Verdict, episode_verdict
from agentd.records import SandboxResult, TrajectoryRecord, action_to_dict
from agentd.viewer.html import (
    badge,
    diff_block,
    esc,
    highlight_pattern,
    highlight_yaml,
    link,
    page,
    pre,
)
from agentd.viewer.summary import EpisodeSummary, slug

_REWARDS = ("total", "format_ok", "exec_ok", "progress", "progress_delta", "regression",
            "final_match", "srl_similarity")


def _json(value: Any) -> str:
    # msgspec rather than json.dumps(indent=2), whose pure-Python encoder was a fifth of a build
    return msgspec.json.format(msgspec.json.encode(value, order="sorted"), indent=2).decode()


def _action(record: TrajectoryRecord) -> str:
    action = record.model_output.action
    if action is None:
        why = record.parse_error or "the output did not parse"
        return f"<p class=bad>No action: {esc(why)}</p>"
    fields = action_to_dict(action)
    parts = [f"<p><b>{esc(fields.pop('tool'))}</b></p>"]
    if isinstance(fields.get("rule_yaml"), str):
        parts.append(highlight_yaml(fields.pop("rule_yaml")))
    for key in ("pattern", "rewrite"):
        if isinstance(fields.get(key), str):
            parts.append(f"<h3>{key}</h3>{highlight_pattern(fields.pop(key))}")
    if fields:
        parts.append(pre(_json(fields)))
    return "".join(parts)


def _result(result: SandboxResult | None) -> str:
    if result is None:
        return "<p class=mute>Nothing ran.</p>"
    head = (f"<p>exit code {esc(result.exit_code)} · {esc(result.error_kind)} · "
            f"{result.duration_ms:.0f} ms · changed: {esc(', '.join(result.changed_files) or '-')}"
            f"{' · ' + str(len(result.matches)) + ' match(es)' if result.matches else ''}</p>")
    parts = [head]
    if result.diff:
        parts.append(f"<h3>diff</h3>{diff_block(result.diff)}")
    for name in ("stdout", "stderr", "error"):
        text = getattr(result, name)
        if text:
            parts.append(f"<h3>{name}</h3>{pre(text)}")
    return "".join(parts)


def _rewards(record: TrajectoryRecord) -> str:
    cells = "".join(f"<th>{esc(k)}</th>" for k in _REWARDS)
    values = "".join(f"<td class=num>{esc(getattr(record.reward, k))}</td>" for k in _REWARDS)
    return f"<table class=rewards><tr>{cells}</tr><tr>{values}</tr></table>"


def checks_table(verdict: Verdict | None) -> str:
    """The verifier's checks, or a note that none were recorded."""
    if verdict is None:
        return "<p class=mute>No verifier verdict recorded for this episode.</p>"
    rows = "".join(f"<tr><td>{esc(c.name)}</td><td>{badge(c.ok, 'ok', 'failed')}</td>"
                   f"<td>{esc(c.detail)}</td></tr>" for c in verdict.checks)
    head = (f"<p>{badge(verdict.accepted, 'accepted', 'rejected')} decided by "
            f"{esc(verdict.decided_by or '-')}</p>")
    return (f"{head}<table class=checks><tr><th>check</th><th></th><th>detail</th></tr>"
            f"{rows}</table>")


def _step(step: Step, after: dict[str, Any] | None) -> str:
    r = step.record
    tool = action_to_dict(r.model_output.action)["tool"] if r.model_output.action else "-"
    summary = (f"<summary><b>step {r.step}</b> {esc(tool)} {badge(r.verified)} "
               f"<span class=num>reward {r.reward.total:.3f}</span>"
               f"{' <span class=mute>' + esc(step.step_kind) + '</span>' if step.step_kind else ''}"
               "</summary>")
    reasoning = (f"<h3>reasoning (native)</h3>{pre(step.reasoning)}" if step.reasoning else "")
    update = r.model_output.state_update
    states = (f"<div class=cols><div><h3>state before</h3>{pre(_json(r.state_before))}</div>"
              f"<div><h3>state after</h3>"
              f"{pre(_json(after)) if after is not None else '<p class=mute>(episode end)</p>'}"
              f"<h3>state update</h3>{pre(_json(update)) if update is not None else '-'}"
              "</div></div>")
    body = (f"{reasoning}<h3>think</h3>{pre(r.model_output.think or '-')}"
            f"<h3>action</h3>{_action(r)}<h3>result</h3>{_result(r.sandbox_result)}"
            f"<h3>rewards</h3>{_rewards(r)}"
            f"{'<h3>verifier</h3>' + checks_table(step.verdict) if step.verdict else ''}"
            f"{states}"
            f"<details><summary>prompt</summary>{pre(r.prompt)}</details>"
            f"<details><summary>raw output</summary>{pre(r.model_output.raw)}</details>")
    return f'<details class=step id="step-{r.step}">{summary}<div class=body>{body}</div></details>'


def episode_page(summary: EpisodeSummary, steps: list[Step]) -> str:
    """The whole page of one episode (written at ``summary.href``)."""
    first = steps[0].record
    afters: list[dict[str, Any] | None] = [s.record.state_before for s in steps[1:]]
    crumbs = (f"{link('../index.html', 'run ' + summary.run_id)} › "
              f"{link('../task/' + slug(summary.task_id) + '.html', 'task ' + summary.task_id)}"
              f" › episode {summary.episode}")
    toc = " ".join(link(f"#step-{s.record.step}", f"step {s.record.step}") for s in steps)
    head = (f"<p>{badge(summary.accepted, 'accepted', 'failed')} policy "
            f"<b>{esc(summary.policy)}</b> · endpoint {esc(first.policy.endpoint or '-')} · "
            f"split {esc(summary.split)} · {summary.steps} steps "
            f"({summary.verified_steps} verified) · return {summary.reward:.3f}"
            f"{'' if summary.complete else ' · <span class=bad>incomplete</span>'}</p>"
            f"<nav class=steps>{toc}</nav><h3>verifier</h3>{checks_table(episode_verdict(steps))}")
    sections = "".join(_step(s, a) for s, a in zip(steps, [*afters, None], strict=True))
    title = f"{summary.task_id} · episode {summary.episode}"
    return page(title, crumbs, head + sections)
