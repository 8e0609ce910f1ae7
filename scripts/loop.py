"""The closed loop on a CPU box (``make loop``): collect, export, train, serve, evaluate.

    .venv/bin/python scripts/loop.py [--train-tasks N] [--test-tasks N] [--steps N] ...

1. **tasks**: from the built corpus, a train set without the held-out recipes, a test set of
   test-split tasks without them, and a held-out set of test-split tasks built by them
   (``data/loop/processed/{train,test,dev}``: the engine knows three split names, so the
   loop's ``dev`` is the held-out set);
2. **collect**: the reference replay on the train set (``agentd run``, configs/loop);
3. **export**: its verified steps as SFT rows (``agentd trajectories export --format sft``),
   with one in ``--keep-submits`` of the submit rows kept for training (see ``export``);
4. **train**: fine-tuning of SmolLM2-135M's top layers on them (``scripts/setup_train_cpu.sh
   train --train-layers``);
5. **serve + run**: the untuned and the tuned model in turn on one CPU vLLM, each through
   ``agentd run --policy actor`` on the test and the held-out sets with the same seeds;
6. **eval + report**: ``agentd eval`` of both, side by side, and ``reports/loop/report.md``.

Each stage writes its result under ``data/loop/`` and is skipped when that result exists, so a
second ``make loop`` after a kill goes on where the first stopped (the training resumes from
its last checkpoint). ``--fresh`` starts over. How long each stage took goes into the report.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from agentd.datasets import load_tasks, write_tasks
from agentd.records import Task
from agentd.testing.vllm_cpu import VLLMServer

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "loop" / "agentd.yaml"
WORK = ROOT / "data" / "loop"
REPORT = ROOT / "reports" / "loop"
BASE_MODEL = Path(os.environ.get("AGENTD_VLLM_HOME", Path.home() / ".cache/agentd/vllm")) \
    / "smollm2-135m-instruct-hf"
PORT = 8190  # configs/loop/vllm_actors.yaml
SERVED = "smollm2-135m"
HELDOUT = ("not-in-operator", "super-no-args", "dict-get-none-default")
MODELS = ("untuned", "tuned")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loop.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train-tasks", type=int, default=300, help="train tasks to collect on")
    p.add_argument("--test-tasks", type=int, default=40, help="test tasks (seen recipes)")
    p.add_argument("--heldout-tasks", type=int, default=16, help="tasks of held-out recipes")
    p.add_argument("--heldout-recipes", default=",".join(HELDOUT),
                   help="recipes kept out of training entirely (comma-separated)")
    p.add_argument("--episodes", type=int, default=2, help="episodes per test task (pass@k)")
    p.add_argument("--steps", type=int, default=360, help="training steps (one row each)")
    p.add_argument("--train-layers", type=int, default=10,
                   help="train the top N of the model's 30 layers (0: all; docs/loop.md)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--keep-submits", type=int, default=4,
                   help="train on one in N of the submit rows (all writing rows)")
    p.add_argument("--seed", type=int, default=0, help="which tasks the sets take")
    p.add_argument("--fresh", action="store_true", help="delete data/loop and start over")
    return p.parse_args(argv)


class Stages:
    """Runs each stage once; records how long it took, every attempt summed
    (``data/loop/stages.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = (json.loads(path.read_text()) if path.exists()
                                          else {})

    def run(self, name: str, done: Path, work: Callable[[], None]) -> None:
        if done.exists():
            print(f"loop: {name}: done before ({done.relative_to(ROOT)})", file=sys.stderr)
            return
        print(f"loop: {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            work()
        finally:  # an attempt that was killed or failed counts too: the stage took that long
            elapsed = time.monotonic() - started
            self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 1)
            self.path.write_text(json.dumps(self.seconds, indent=2))
        print(f"loop: {name}: {self.seconds[name]:.0f} s", file=sys.stderr, flush=True)


def agentd(*args: str, failed_ok: bool = False) -> None:
    """Run an agentd command; exit 1 (work failed, e.g. an episode the model's server let
    die) is acceptable where ``failed_ok``: eval counts what did not finish."""
    code = subprocess.run([sys.executable, "-m", "agentd", *args], check=False,
                          cwd=ROOT).returncode
    if code and not (failed_ok and code == 1):
        raise SystemExit(f"loop: agentd {args[0]} exited {code}")


def recipes(task: Task) -> set[str]:
    return set(task.meta.recipe.split("+"))


def pick(tasks: list[Task], n: int, seed: int) -> list[Task]:
    chosen = sorted(tasks, key=lambda t: t.task_id)
    random.Random(seed).shuffle(chosen)
    return sorted(chosen[:n], key=lambda t: t.task_id)


def make_sets(args: argparse.Namespace, heldout: set[str], processed: Path,
              out: Path) -> None:
    """Train and test sets without the held-out recipes, and a set of test tasks built by
    them, each a seeded sample, written as ``out/<set>/tasks.jsonl``."""
    train = list(load_tasks(processed / "train" / "tasks.jsonl"))
    test = list(load_tasks(processed / "test" / "tasks.jsonl"))
    sets = {
        "train": pick([t for t in train if not recipes(t) & heldout], args.train_tasks,
                      args.seed),
        "test": pick([t for t in test if not recipes(t) & heldout], args.test_tasks, args.seed),
        # The engine knows three split names: the loop's dev split is the held-out set.
        "dev": pick([t for t in test if recipes(t) & heldout], args.heldout_tasks, args.seed),
    }
    for name, chosen in sets.items():
        if not chosen:
            raise SystemExit(f"loop: no {name} tasks (is the corpus built? `make corpus`)")
        path = out / name / "tasks.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tasks(path, chosen)
        print(f"loop: {name}: {len(chosen)} tasks", file=sys.stderr)


def trajectories(run_id: str) -> Path:
    return WORK / "trajectories" / run_id


def run_model(model: str, model_dir: Path, episodes: int, done: Path) -> None:
    os.environ.pop("AGENTD_VLLM_URL", None)  # the loop serves its own two models
    # Eight sequences at once: the most tokens/s two cores gave (docs/policies.md, saturation).
    os.environ.setdefault("AGENTD_VLLM_MAX_SEQS", "8")
    log = WORK / "logs" / f"vllm-{model}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with VLLMServer.start(log_path=log, max_model_len=2048, model_dir=model_dir,
                          served_name=SERVED, port=PORT):
        for split, name in (("test", "test"), ("dev", "heldout")):
            # A run killed half-way resumes under its run id: the engine's queue knows
            # which episodes are done, and the writer adds each step exactly once.
            run_id = f"{model}-{name}"
            agentd("run", "--config", str(CONFIG), "--split", split, "--policy", "actor",
                   "--episodes", str(episodes), "--run-id", run_id, "--no-progress",
                   failed_ok=True)
    done.touch()


def collect() -> None:
    run = trajectories("reference-train")
    agentd("run", "--config", str(CONFIG), "--split", "train", "--policy", "reference",
           "--run-id", "reference-train", "--no-progress")
    (run / ".done").touch()


def export(sft: Path, keep_submits: int) -> None:
    """The verified steps as SFT rows, then ``train.jsonl``: every writing row and one in
    ``keep_submits`` of the submit rows. A reference episode is one or more edits and a
    submit, so two rows in five say "submit"; trained on that mix, SmolLM2 learnt to submit
    at once, on an untouched workspace. An episode that runs out of steps is judged all the
    same, so a model that edits and submits late still solves the task."""
    agentd("trajectories", "export", "--config", str(CONFIG), "--format", "sft",
           "--verified-only", str(trajectories("reference-train")), "--out", str(sft))
    submits = 0
    with sft.open("rb") as src, (sft.parent / "train.jsonl").open("wb") as dst:
        for line in src:
            if json.loads(line).get("step_kind") == "submit":
                submits += 1
                if submits % keep_submits:
                    continue
            dst.write(line)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    heldout = {r for r in args.heldout_recipes.split(",") if r}
    if args.fresh:
        shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    REPORT.mkdir(parents=True, exist_ok=True)
    stages = Stages(WORK / "stages.json")
    sft = WORK / "sft" / "sft.jsonl"
    model_out = WORK / "models" / "sft"
    stages.run("tasks", WORK / "processed" / "dev" / "tasks.jsonl",
               lambda: make_sets(args, heldout, ROOT / "data" / "processed",
                                 WORK / "processed"))
    stages.run("collect", trajectories("reference-train") / ".done", collect)
    stages.run("export", sft.parent / "train.jsonl", lambda: export(sft, args.keep_submits))
    stages.run("train", model_out / "final" / "config.json",
               lambda: train(args, sft.parent / "train.jsonl", model_out))
    for model, model_dir in (("untuned", BASE_MODEL), ("tuned", model_out / "final")):
        done = WORK / f".done-{model}"
        stages.run(f"serve + run {model}", done,
                   functools.partial(run_model, model, model_dir, args.episodes, done))
    ks = ",".join(sorted({"1", str(args.episodes)}, key=int))
    for split in ("test", "heldout"):
        agentd("eval", "--config", str(CONFIG), *(f"{m}={trajectories(f'{m}-{split}')}"
                                                  for m in MODELS),
               "--k", ks, "--out", str(REPORT / split))
    write_report(args, stages.seconds, model_out, heldout)
    print(f"loop: wrote {REPORT / 'report.md'}", file=sys.stderr)
    return 0


def train(args: argparse.Namespace, sft: Path, out: Path) -> None:
    if not (BASE_MODEL / "config.json").exists():
        raise SystemExit(f"loop: no base model at {BASE_MODEL} (make e2e-setup)")
    subprocess.run(["bash", str(ROOT / "scripts" / "setup_train_cpu.sh"), "train",
                    "--data", str(sft), "--model", str(BASE_MODEL), "--out", str(out),
                    "--steps", str(args.steps), "--lr", str(args.lr),
                    "--train-layers", str(args.train_layers)], check=True, cwd=ROOT)


def write_report(args: argparse.Namespace, seconds: dict[str, float], model_out: Path,
                 heldout: set[str]) -> None:
    from agentd.reports.loop_report import render_loop_report

    text = render_loop_report(
        test=json.loads((REPORT / "test" / "eval.json").read_text()),
        heldout=json.loads((REPORT / "heldout" / "eval.json").read_text()),
        train_log=model_out / "train_log.jsonl", seconds=seconds, heldout_recipes=heldout,
        command="make loop" + _non_default(args), out_dir=REPORT)
    (REPORT / "report.md").write_text(text)


def _non_default(args: argparse.Namespace) -> str:
    defaults = parse_args([])
    changed = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
               if k != "fresh" and v != getattr(defaults, k)]
    return f" LOOP_ARGS='{' '.join(changed)}'" if changed else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
