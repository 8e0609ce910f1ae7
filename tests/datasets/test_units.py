"""Directory hashing, splits, recipes and the task store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

from agentd.datasets.astgrep import binary
from agentd.datasets.dirhash import dir_hash
from agentd.datasets.recipes import RECIPES_DIR, SGCONFIG, load_recipes
from agentd.datasets.splits import SPLITS, assign_splits
from agentd.datasets.store import load_tasks, write_tasks
from agentd.records import AstGrepRule, Task, TaskMeta
from agentd.sandbox.rules import parse_rules


def _tree(root: Path, order: list[str]) -> Path:
    for name in order:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# {name}\n")
    return root


class TestDirHash:
    def test_same_content_same_hash_regardless_of_creation_order(self, tmp_path: Path) -> None:
        """Two trees with equal paths, modes and bytes hash equal."""
        a = _tree(tmp_path / "a", ["x.py", "pkg/y.py", "pkg/z/w.py"])
        b = _tree(tmp_path / "b", ["pkg/z/w.py", "pkg/y.py", "x.py"])
        assert dir_hash(a) == dir_hash(b)
        assert dir_hash(a)[1:] == (3, sum(len(f"# {n}\n") for n in ["x.py", "pkg/y.py",
                                                                     "pkg/z/w.py"]))

    def test_content_mode_and_name_changes_change_the_hash(self, tmp_path: Path) -> None:
        """Editing a byte, a mode or a name gives a different hash."""
        root = _tree(tmp_path / "a", ["x.py", "y.py"])
        first = dir_hash(root)[0]
        (root / "x.py").chmod(0o755)
        second = dir_hash(root)[0]
        (root / "y.py").write_text("# changed\n")
        third = dir_hash(root)[0]
        (root / "y.py").rename(root / "z.py")
        assert len({first, second, third, dir_hash(root)[0]}) == 4


class TestSplits:
    def test_groups_are_disjoint_and_deterministic(self) -> None:
        """Each group is in exactly one split; the same seed gives the same answer."""
        sizes = {f"ds:mod{i}": (i % 7) + 1 for i in range(200)}
        ratios = {"train": 0.8, "dev": 0.1, "test": 0.1}
        one = assign_splits(sizes, ratios, seed=1)
        assert one == assign_splits(sizes, ratios, seed=1)
        assert set(one) == set(sizes)
        assert one != assign_splits(sizes, ratios, seed=2)

    def test_shares_follow_the_ratios(self) -> None:
        """Task counts per split are close to the configured ratios."""
        sizes = {f"g{i}": 3 for i in range(300)}
        out = assign_splits(sizes, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=7)
        counts = {s: sum(sizes[g] for g, sp in out.items() if sp == s) for s in SPLITS}
        assert abs(counts["train"] / 900 - 0.8) < 0.02
        assert counts["dev"] > 0 and counts["test"] > 0


class TestRecipes:
    def test_ast_grep_test_passes_on_every_recipe(self) -> None:
        """`ast-grep test` checks valid/invalid cases and the fix snapshots of all rules."""
        proc = subprocess.run([binary(), "test", "-c", str(SGCONFIG), "--color", "never"],
                              cwd=RECIPES_DIR, capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "failed" in proc.stdout and " 0 failed" in proc.stdout

    def test_catalogue_shape(self) -> None:
        """At least 25 recipes, each with a fix, test cases and several phrasings."""
        recipes = load_recipes()
        assert len(recipes) >= 25
        for r in recipes:
            assert len(r.instructions) >= 3, r.id
            assert (RECIPES_DIR / "rule-tests" / f"{r.id}-test.yml").is_file(), r.id
            assert "fix:" in r.rule_yaml

    def test_rules_pass_the_sandbox_rule_checks(self) -> None:
        """The reference rule text is accepted by the sandbox (no anchors, known keys)."""
        for r in load_recipes():
            [doc] = parse_rules(r.rule_yaml)
            assert doc["id"] == r.id


class TestStore:
    def test_round_trip(self, tmp_path: Path) -> None:
        """Tasks written atomically read back equal, in order."""
        tasks = [Task(task_id=f"t{i}", split="dev", language="python", instruction="do",
                      files={"a.py": "x == None\n"}, gold={"a.py": "x is None\n"},
                      reference_actions=[AstGrepRule(rule_yaml="id: r", paths=["a.py"])],
                      meta=TaskMeta(dataset="d", source_path="a.py", recipe="r",
                                    license="MIT", source_sha256="0" * 64))
                 for i in range(3)]
        path = tmp_path / "dev" / "tasks.jsonl"
        assert write_tasks(path, tasks) == 3
        assert list(load_tasks(path)) == tasks
        assert [p.name for p in path.parent.iterdir()] == ["tasks.jsonl"]
        line = path.read_bytes().splitlines()[0]
        assert msgspec.json.decode(line)["reference_actions"][0]["tool"] == "ast_grep_rule"
