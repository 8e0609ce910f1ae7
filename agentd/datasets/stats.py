"""Per-split statistics of the built tasks, and the build's drop reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from agentd.records import Task

_SIZE_BUCKETS = (1024, 4096, 16384, 49152)


def size_bucket(n: int) -> str:
    """A human bucket for a byte count: ``<=1KiB``, ``<=4KiB`` …"""
    for edge in _SIZE_BUCKETS:
        if n <= edge:
            return f"<={edge // 1024}KiB"
    return f">{_SIZE_BUCKETS[-1] // 1024}KiB"


def recipe_family(recipe: str) -> str:
    """``single`` for one recipe, ``multi-step`` for ``a+b``, ``rename`` for renames."""
    if recipe.startswith("rename-function"):
        return "rename"
    return "multi-step" if "+" in recipe else "single"


def split_stats(tasks: Iterable[Task]) -> dict[str, Any]:
    """Counts by recipe, kind, language, steps and before-size for one split."""
    by_recipe: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    datasets: Counter[str] = Counter()
    n = tested = 0
    for t in tasks:
        n += 1
        tested += t.test_spec is not None
        by_recipe[t.meta.recipe] += 1
        kinds[recipe_family(t.meta.recipe)] += 1
        langs[t.language] += 1
        steps[str(len(t.reference_actions))] += 1
        sizes[size_bucket(sum(len(s.encode()) for s in t.files.values()))] += 1
        datasets[t.meta.dataset] += 1
    return {"tasks": n, "with_tests": tested, "by_kind": dict(kinds), "by_dataset": dict(datasets),
            "by_language": dict(langs), "by_steps": dict(steps), "by_file_size": dict(sizes),
            "by_recipe": dict(sorted(by_recipe.items()))}


def render(stats: dict[str, Any]) -> str:
    """A short plain-text report for the terminal."""
    lines = []
    for split, s in stats["splits"].items():
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(s["by_kind"].items()))
        lines.append(f"{split:<6} {s['tasks']:>6} tasks  ({kinds}), "
                     f"{s.get('with_tests', 0)} with tests")
        top = sorted(s["by_recipe"].items(), key=lambda kv: -kv[1])[:5]
        lines.append("       top recipes: " + ", ".join(f"{k}={v}" for k, v in top))
    total = sum(s["tasks"] for s in stats["splits"].values())
    tested = sum(s.get("with_tests", 0) for s in stats["splits"].values())
    lines.append(f"total  {total:>6} tasks, {tested} with tests")
    specs = stats.get("tests")
    if specs:
        outcomes = ", ".join(f"{k}={v}" for k, v in specs["tasks"].items() if k != "with_spec")
        runs = specs.get("gold_run_ms") or {}
        lines.append(f"tests: {specs['modules'].get('with_spec', 0)} modules with a spec, "
                     f"{specs.get('seconds', 0)}s; per task: {outcomes}; gold run median "
                     f"{runs.get('median', 0)} ms, max {runs.get('max', 0)} ms")
    drops = stats.get("drops") or {}
    if drops:
        lines.append("dropped: " + ", ".join(f"{k}={v}" for k, v in sorted(drops.items())))
    if "build_seconds" in stats:
        lines.append(f"build time: {stats['build_seconds']:.1f}s")
    return "\n".join(lines)
