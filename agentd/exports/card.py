"""The dataset card: a ``README.md`` written beside every training export.

It says what the rows are and where they came from — counts, splits, policies, recipes, the
licenses of the sources, the reward definitions, the filters, and the agentd versions and
config hashes recorded with the steps — with YAML front matter that the Hugging Face Hub
reads (license, ``configs`` → the data file), so the directory can be pushed as it is.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentd import __version__
from agentd.exports.columns import origin_columns
from agentd.exports.extras import Step
from agentd.exports.tasks import TaskMetaView
from agentd.exports.tokens import token_columns
from agentd.fileio import atomic_output
from agentd.records import TrajectoryRecord

# The definitions of ``episode.reward`` (this package may not import it; a test checks that
# the weights here are the ones the engine scores with).
REWARD_DEFINITIONS = """\
| component | meaning |
|---|---|
| `format_ok` | the completion parsed into an action |
| `exec_ok` | the sandbox ran the action without error (exit 0, no refusal, timeout or limit) |
| `progress` | share of the gold diff's hunks present in the workspace after the step, in [0, 1] |
| `progress_delta` | progress after the step minus before it |
| `regression` | share of the lines changed so far that are not changes of the gold diff |
| `final_match` | the workspace equals the gold (re-checked at episode end in a fresh sandbox) |
| `srl_similarity` | difflib ratio of the normalised action to the reference action; −1 broken |

    total = −1                                                 if not format_ok
    total = 0.1·exec_ok + 0.4·progress_delta − 0.4·regression
            + 0.3·final_match + 0.2·max(srl_similarity, 0)     otherwise

A *verified* step parsed, ran cleanly, left no regression and (for a rewrite) made progress or
matched the gold. An episode's reward is its return, the sum of its step totals. An episode is
*accepted* when the verifier accepted it (`verdict_accepted`), or, in records without a
verdict, when it is complete and its last step is a final match.
"""


@dataclass
class CardStats:
    """Counts over the rows an export wrote."""

    rows: int = 0
    steps: int = 0
    token_rows: int = 0
    episodes: set[tuple[str, str, int]] = field(default_factory=set)
    splits: Counter[str] = field(default_factory=Counter)
    policies: Counter[str] = field(default_factory=Counter)
    recipes: Counter[str] = field(default_factory=Counter)
    sources: Counter[tuple[str, str]] = field(default_factory=Counter)  # (dataset, license)
    config_hashes: Counter[str] = field(default_factory=Counter)
    agentd_versions: Counter[str] = field(default_factory=Counter)

    def add(self, row: dict[str, Any], steps: list[Step]) -> None:
        self.rows += 1
        self.steps += len(steps)
        self.token_rows += row.get("token_ids_source") == "server"
        self.episodes.add((row["run_id"], row["task_id"], row["episode"]))
        self.splits[row["split"] or "-"] += 1
        self.policies[f"{row['policy_kind']}/{row['policy_model']}"] += 1
        self.recipes[row["recipe"] or "(unknown: no task file)"] += 1
        self.sources[(row["dataset"] or "(unknown)", row["license"] or "(unknown)")] += 1
        self.config_hashes[row["config_hash"] or "-"] += 1
        self.agentd_versions[row["agentd_version"] or "-"] += 1

    def add_record(self, record: TrajectoryRecord, meta: TaskMetaView | None) -> None:
        """One row that is a record (the jsonl, parquet and srl exports)."""
        self.add({**origin_columns(record, meta), **token_columns(record.usage)},
                 [Step(record)])


def _table(title: str, counts: Counter[str]) -> list[str]:
    lines = [f"| {title} | rows |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in sorted(counts.items())]
    return [*lines, ""]


def _front_matter(data_file: str, stats: CardStats, kind: str) -> list[str]:
    licenses = {lic for (_, lic) in stats.sources if not lic.startswith("(")}
    license_ = next(iter(licenses)).lower() if len(licenses) == 1 else "other"
    return ["---", f"license: {license_}", f"tags: [agentd, ast-grep, trajectories, {kind}]",
            "configs:", "- config_name: default", f"  data_files: {data_file}", "---", ""]


def card_text(data_file: str, kind: str, stats: CardStats, *, summary: list[str],
              filters: dict[str, Any], columns: str) -> str:
    """The card's Markdown (``summary``: extra bullet lines, e.g. the groups kept)."""
    fmt = "parquet" if data_file.endswith(".parquet") else "json"
    out = _front_matter(data_file, stats, kind)
    out += [f"# agentd {kind} export: `{data_file}`", "",
            f"Written by agentd {__version__} on "
            f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.", "",
            "## Counts", "", f"- rows: {stats.rows}", f"- episodes: {len(stats.episodes)}",
            f"- steps behind the rows: {stats.steps}",
            f"- rows with server token ids: {stats.token_rows}", *summary, "",
            "## Filters", ""]
    out += [f"- `{k}`: {v}" for k, v in filters.items()] + [""]
    out += ["## Splits", "", *_table("split", stats.splits)]
    out += ["## Policies", "", *_table("policy (kind/model)", stats.policies)]
    out += ["## Recipes", "", *_table("recipe", stats.recipes)]
    out += ["## Sources and licenses", "", "| dataset | license | rows |", "|---|---|---|"]
    out += [f"| `{d}` | {lic} | {n} |" for (d, lic), n in sorted(stats.sources.items())] + [""]
    out += ["## Rewards", "", REWARD_DEFINITIONS]
    out += ["## Provenance", "", *_table("agentd version", stats.agentd_versions),
            *_table("config hash", stats.config_hashes)]
    out += ["## Columns", "", columns, "", "## Loading", "", "```python",
            "from datasets import load_dataset",
            f'ds = load_dataset("{fmt}", data_files="{data_file}", split="train")', "```", ""]
    return "\n".join(out)


def write_card(out: Path, text: str) -> Path:
    """``README.md`` in the export's directory, written atomically."""
    card = out.parent / "README.md"
    with atomic_output(card) as f:
        f.write(text.encode())
    return card
