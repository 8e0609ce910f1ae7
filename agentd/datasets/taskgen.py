"""Candidate tasks: recipes × corpus files, computed on throwaway copies.

A candidate is a ``Task`` whose gold after-state came from running its own reference rule
with the ast-grep CLI (unjailed, on a copy). It still has to pass the sandbox check in
``verify`` before it is kept. Three shapes:

* single — one recipe on one file;
* multi-step — two or three recipes on one file, in sequence, each of which must change it;
* rename — a function renamed in its module and at its call sites in an importing module
  (see ``rename``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import msgspec

from agentd.config import BuildConfig
from agentd.datasets.astgrep import apply_each
from agentd.datasets.corpus import SourceFile, parses
from agentd.datasets.recipes import Recipe
from agentd.datasets.rename import INSTRUCTIONS, RenamePair, find_pairs, rename_rule
from agentd.records import AstGrepRule, Task, TaskMeta

LANGUAGE = "python"
_CHUNK = 300  # items per ast-grep process: bounds the temporary copy and rule file
_THEN = {2: ("Then",), 3: ("Then", "Finally")}


@dataclass(frozen=True)
class Candidate:
    """A task before verification, with the split group of its files."""

    task: Task
    group: str


def stable_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def task_id(dataset: str, source_path: str, recipe: str) -> str:
    """Stable across runs and hosts: a hash of dataset, source path and recipe."""
    return stable_hash(dataset, source_path, recipe)[:24]


def seeded_order(items: Sequence[str], seed: int, salt: str) -> list[str]:
    """A deterministic shuffle of ``items`` (the same seed gives the same sample)."""
    return sorted(items, key=lambda s: stable_hash(str(seed), salt, s))


def make_task(src: SourceFile, *, recipe: str, instruction: str, files: dict[str, str],
              gold: dict[str, str], rules: Sequence[str], license_: str,
              build: BuildConfig) -> Task:
    """A Task record whose reference actions apply ``rules`` to the task's files."""
    paths = sorted(files)
    return Task(
        task_id=task_id(src.dataset, src.path, recipe), split="", language=LANGUAGE,
        instruction=instruction, files=files, gold=gold,
        reference_actions=[AstGrepRule(rule_yaml=r, paths=paths) for r in rules],
        meta=TaskMeta(dataset=src.dataset, source_path=src.path, recipe=recipe,
                      license=license_, source_sha256=src.sha256),
        max_steps=build.max_steps,
    )


def check_gold(before: dict[str, str], steps: list[dict[str, str]], drops: Counter[str],
               ) -> dict[str, str] | None:
    """The changed files after the last step, if every step changed something and the
    result parses; otherwise count why and return None."""
    prev = before
    for state in steps:
        if state == prev:
            drops["no_change" if prev is before else "step_no_change"] += 1
            return None
        prev = state
    changed = {p: t for p, t in prev.items() if before.get(p) != t}
    if not all(parses(t) for t in changed.values()):
        drops["gold_unparsable"] += 1
        return None
    return changed


class TaskGenerator:
    """Builds the candidates of one dataset."""

    def __init__(self, *, corpus: list[SourceFile], hits: dict[str, set[str]],
                 recipes: list[Recipe], license_: str, build: BuildConfig,
                 workers: int, timeout_s: float) -> None:
        self.by_path = {f.path: f for f in corpus}
        self.hits = hits
        self.recipes = {r.id: r for r in recipes}
        self.license = license_
        self.build = build
        self.timeout_s = timeout_s
        self.drops: Counter[str] = Counter()
        self._limiter = anyio.CapacityLimiter(max(1, workers))
        self.changed_by: dict[str, list[str]] = {}  # path -> recipes that changed it
        self._after: dict[tuple[str, str], str] = {}  # (path, recipe) -> after-state

    def _files_for(self, recipe: str) -> list[str]:
        paths = [p for p in self.hits.get(recipe, ()) if p in self.by_path]
        ordered = seeded_order(paths, self.build.seed, recipe)
        return ordered[: self.build.max_tasks_per_recipe_per_dataset]

    async def apply(self, items: list[tuple[dict[str, str], str]]) -> list[dict[str, str]]:
        """After-states of (files, rule) items: chunked ast-grep runs, ``workers`` at once."""
        results: list[dict[str, str]] = [{} for _ in items]

        async def chunk(start: int) -> None:
            part = items[start:start + _CHUNK]
            async with self._limiter:
                done = await apply_each(part, timeout_s=self.timeout_s)
            results[start:start + len(done)] = done

        async with anyio.create_task_group() as tg:
            for start in range(0, len(items), _CHUNK):
                tg.start_soon(chunk, start)
        return results

    async def singles(self) -> list[Candidate]:
        """One task per (recipe, file) where the recipe changes the file."""
        pairs = [(r, p) for r in sorted(self.recipes) for p in self._files_for(r)]
        items = [({p: self.by_path[p].text}, self.recipes[r].rule_yaml) for r, p in pairs]
        afters = await self.apply(items)
        out: list[Candidate] = []
        for (rid, path), (before, _rule), after in zip(pairs, items, afters, strict=True):
            gold = check_gold(before, [after], self.drops)
            if gold is None:
                continue
            self._after[(path, rid)] = after[path]
            self.changed_by.setdefault(path, []).append(rid)
            out.append(self._single(self.by_path[path], self.recipes[rid], before, gold))
        return out

    def _single(self, src: SourceFile, recipe: Recipe, before: dict[str, str],
                gold: dict[str, str]) -> Candidate:
        pick = int(stable_hash(src.dataset, src.path, recipe.id)[:8], 16)
        task = make_task(src, recipe=recipe.id, instruction=recipe.instruction(pick),
                         files=before, gold=gold, rules=[recipe.rule_yaml],
                         license_=self.license, build=self.build)
        return Candidate(task, src.group)

    def _combos(self) -> list[tuple[str, tuple[str, ...]]]:
        """(path, recipe sequence) pairs and triples, sampled deterministically."""
        combos: list[tuple[str, tuple[str, ...]]] = []
        for path, recipes in sorted(self.changed_by.items()):
            ids = sorted(recipes)
            combos += [(path, c) for c in itertools.combinations(ids, 2)]
            combos += [(path, tuple(ids[i:i + 3])) for i in range(len(ids) - 2)]
        keys = {f"{p}|{'+'.join(c)}": (p, c) for p, c in combos}
        chosen = seeded_order(list(keys), self.build.seed, "multi")
        return [keys[k] for k in chosen[: self.build.max_multi_step_per_dataset]]

    async def multi_steps(self) -> list[Candidate]:
        """Two- and three-recipe sequences on one file; every step must change it.

        Step one is the single-recipe result already computed; each further step is one
        batched ast-grep run over all sequences that have that many steps.
        """
        combos = self._combos()
        states = [[{p: self._after[(p, seq[0])]}] for p, seq in combos]
        for step in (1, 2):
            todo = [i for i, (_p, seq) in enumerate(combos) if len(seq) > step]
            items = [(states[i][-1], self.recipes[combos[i][1][step]].rule_yaml) for i in todo]
            for i, after in zip(todo, await self.apply(items), strict=True):
                states[i].append(after)
        out: list[Candidate] = []
        for (path, seq), steps in zip(combos, states, strict=True):
            before = {path: self.by_path[path].text}
            gold = check_gold(before, steps, self.drops)
            if gold is not None:
                out.append(self._multi(self.by_path[path], seq, before, gold))
        return out

    def _multi(self, src: SourceFile, seq: tuple[str, ...], before: dict[str, str],
               gold: dict[str, str]) -> Candidate:
        name = "+".join(seq)
        pick = int(stable_hash(src.dataset, src.path, name)[:8], 16)
        parts = [self.recipes[r].instruction(pick + i) for i, r in enumerate(seq)]
        text = parts[0] + "".join(f" {word}: {p[0].lower()}{p[1:]}"
                                  for word, p in zip(_THEN[len(seq)], parts[1:], strict=True))
        task = make_task(src, recipe=name, instruction=text, files=before, gold=gold,
                         rules=[self.recipes[r].rule_yaml for r in seq],
                         license_=self.license, build=self.build)
        return Candidate(task, src.group)


async def rename_candidates(gen: TaskGenerator, corpus: list[SourceFile]) -> list[Candidate]:
    """Cross-file rename tasks for ``corpus`` (one ast-grep process per pair)."""
    pairs = await anyio.to_thread.run_sync(lambda: list(find_pairs(corpus)))
    keyed = {stable_hash(p.defn.path, p.user.path, p.old): p for p in pairs}
    chosen = seeded_order(list(keyed), gen.build.seed, "rename")
    pairs = [keyed[k] for k in chosen[: gen.build.max_renames_per_dataset]]
    items = [({p.defn.path: p.defn.text, p.user.path: p.user.text}, rename_rule(p.old, p.new))
             for p in pairs]
    out: list[Candidate] = []
    for pair, (before, rule), after in zip(pairs, items, await gen.apply(items), strict=True):
        gold = check_gold(before, [after], gen.drops)
        if gold is None:
            continue
        if len(gold) != 2:
            gen.drops["rename_incomplete"] += 1
            continue
        out.append(_rename_task(gen, pair, before, gold, rule))
    return out


def _rename_task(gen: TaskGenerator, pair: RenamePair, before: dict[str, str],
                 gold: dict[str, str], rule: str) -> Candidate:
    pick = int(stable_hash(pair.defn.path, pair.user.path, pair.old)[:8], 16)
    text = INSTRUCTIONS[pick % len(INSTRUCTIONS)].format(
        old=pair.old, new=pair.new, defn=pair.defn.path, user=pair.user.path)
    task = make_task(pair.defn, recipe="rename-function", instruction=text, files=before,
                     gold=gold, rules=[rule], license_=gen.license, build=gen.build)
    # The id must tell apart two users of the same function.
    task = msgspec.structs.replace(
        task, task_id=task_id(pair.defn.dataset, f"{pair.defn.path}>{pair.user.path}",
                              f"rename-function:{pair.old}"))
    return Candidate(task, pair.defn.group)
