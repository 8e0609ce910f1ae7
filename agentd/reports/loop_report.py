"""``reports/loop/report.md``: the closed loop's result (``scripts/loop.py``, ``make loop``).

It reads what the loop's stages wrote — the two ``agentd eval`` summaries (test and held-out
recipes), the trainer's ``train_log.jsonl`` and the stage timings — and draws the training
curve; the side-by-side charts are the evaluations' own ``eval.png``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_COLUMNS = ("success", "pass@1", "precision", "parse_failure_rate", "mean_steps")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def side_by_side(summary: dict[str, Any]) -> list[str]:
    """One row per model: episodes, success, every pass@k, precision, parse failures, steps."""
    ks = [f"pass@{k}" for k in summary["k"]]
    names = ["episodes", "success", *ks, "precision", "parse fail", "mean steps"]
    keys = ["episodes", "success", *ks, "precision", "parse_failure_rate", "mean_steps"]
    lines = ["| model | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for run in summary["runs"]:
        o = run["overall"]
        lines.append(f"| {run['label']} | " + " | ".join(_cell(o.get(k)) for k in keys) + " |")
    return lines


def success_of(summary: dict[str, Any], label: str) -> float:
    for run in summary["runs"]:
        if run["label"] == label:
            return float(run["overall"]["success"])
    raise KeyError(label)


def read_train_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def training_curve(log: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [e["step"] for e in log]
    losses = [e["loss"] for e in log]
    ax.plot(steps, losses, alpha=0.35, label="loss per step")
    window = max(1, len(losses) // 20)
    smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
              for i in range(len(losses))]
    ax.plot(steps, smooth, label=f"mean of {window}")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_title("Training curve")
    ax.legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return out


def _stages(seconds: dict[str, float]) -> list[str]:
    lines = ["| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {s:.0f} |" for name, s in seconds.items()]
    return [*lines, f"| **total** | **{sum(seconds.values()):.0f}** |"]


def render_loop_report(*, test: dict[str, Any], heldout: dict[str, Any], train_log: Path,
                       seconds: dict[str, float], heldout_recipes: Iterable[str], command: str,
                       out_dir: Path) -> str:
    log = read_train_log(train_log)
    curve = training_curve(log, out_dir / "train_curve.png").name if log else None
    tuned, untuned = success_of(test, "tuned"), success_of(test, "untuned")
    ratio = f"{tuned / untuned:.1f}×" if untuned else "∞ (the untuned model solved none)"
    first = sum(e["loss"] for e in log[:10]) / len(log[:10]) if log else 0.0
    last = sum(e["loss"] for e in log[-10:]) / len(log[-10:]) if log else 0.0
    lines = [
        "# The closed loop: trained on agentd's verified trajectories, evaluated held out", "",
        f"Made by `{command}`. Test split (files unseen in training, recipes seen): tuned "
        f"success **{tuned:.3f}** against untuned **{untuned:.3f}** ({ratio}), measured side "
        "by side in one run with the same tasks, seeds and episodes per task.", "",
        "## Test split (seen recipes)", "", *side_by_side(test), "",
        "![test: success, pass@k, precision](test/eval.png)", "",
        f"## Held-out recipes ({', '.join(sorted(heldout_recipes))}: never in training)", "",
        *side_by_side(heldout), "", "![held out](heldout/eval.png)", "",
        "Per recipe and difficulty: [test](test/eval.md), [held out](heldout/eval.md).", "",
        "## Training", "",
        f"{len(log)} optimiser steps; mean loss of the first 10 steps {first:.3f}, of the last "
        f"10 {last:.3f}.", "",
    ]
    if curve:
        lines += [f"![training curve]({curve})", ""]
    lines += ["## How long each stage took (seconds)", "", *_stages(seconds), ""]
    return "\n".join(lines)
