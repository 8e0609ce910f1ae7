"""Training rows from crafted records: schemas, newer optional fields, the dataset card."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentd.episode.reward import DEFAULT_WEIGHTS
from agentd.exports.card import REWARD_DEFINITIONS
from agentd.exports.export import ExportResult, Filter
from agentd.exports.extras import Step, decode_extras
from agentd.exports.groups import GroupStats, export_groups, rollout_row
from agentd.exports.schemas import groups_schema, sft_schema
from agentd.exports.sft import export_sft, sft_rows
from agentd.records import TrajectoryRecord
from agentd.testing.samples import sample_episode

from .helpers import write_records

PROMPT = "[system]\nBe careful.\n\n[user]\nRefactor pkg/mod.py."
VERDICT = {"accepted": False, "decided_by": "fresh-sandbox",
           "checks": [{"name": "tests_pass", "ok": False, "detail": "1 failed"}]}


def episode(task: str = "t1", n: int = 0, **overrides: Any) -> list[TrajectoryRecord]:
    return sample_episode("run-1", task, n, steps=2, prompt=PROMPT, **overrides)


def with_newer_fields(record: TrajectoryRecord, verdict: dict[str, Any] | None) -> bytes:
    """The line a newer engine writes: verdict, native reasoning and step kind added."""
    data = msgspec.to_builtins(record)
    data["model_output"]["reasoning"] = f"native reasoning {record.step}"
    data["reward"]["step_kind"] = "submit" if record.done else "write"
    if verdict is not None and record.done:
        data["verdict"] = verdict
    return msgspec.json.encode(data)


def steps_of(records: list[TrajectoryRecord], verdict: dict[str, Any] | None) -> list[Step]:
    out = []
    for r in records:
        line = with_newer_fields(r, verdict)
        out.append(Step(msgspec.json.decode(line, type=TrajectoryRecord), decode_extras(line)))
    return out


class TestSchemas:
    @pytest.mark.parametrize(("unit", "shape"), [("step", "messages"),
                                                 ("step", "prompt-completion"),
                                                 ("episode", "messages")])
    def test_sft_rows_and_schema_have_the_same_columns(self, unit: Any, shape: Any) -> None:
        """Every column a row carries is in the Parquet schema, and nothing else is."""
        rows = list(sft_rows([steps_of(episode(), None)], Filter(), None, ExportResult(),
                             unit=unit, shape=shape))
        assert rows
        assert set(rows[0][0]) == set(sft_schema(unit, shape).names)

    def test_group_rows_and_schema_have_the_same_columns(self) -> None:
        """The same for a group rollout, its steps included."""
        row = rollout_row(steps_of(episode(), None), GroupStats(2, 1.0, 0.5), None)
        schema = groups_schema()
        assert set(row) == set(schema.names)
        step_type = schema.field("steps").type.value_type
        assert set(row["steps"][0]) == {step_type.field(i).name
                                        for i in range(step_type.num_fields)}


class TestNewerFields:
    def test_verdict_reasoning_and_step_kind_fill_their_columns(self) -> None:
        """A record with the verifier's verdict, native reasoning and step kind shows them."""
        rows = [r for r, _ in sft_rows([steps_of(episode(), VERDICT)], Filter(), None,
                                       ExportResult(), unit="step", shape="messages")]
        assert [r["reasoning"] for r in rows] == ["native reasoning 0", "native reasoning 1"]
        assert [r["step_kind"] for r in rows] == ["write", "submit"]
        assert all(r["verdict_accepted"] is False for r in rows)
        assert rows[0]["verdict_checks"] == VERDICT["checks"]
        assert not rows[0]["episode_accepted"]  # the verdict overrides the final match

    def test_a_rejected_episode_is_no_sft_episode_row(self) -> None:
        """Episode rows are accepted episodes: the verifier's rejection removes one."""
        eps = [steps_of(episode("t1"), VERDICT), steps_of(episode("t2"), None)]
        rows = [r for r, _ in sft_rows(eps, Filter(), None, ExportResult(), unit="episode",
                                       shape="messages")]
        assert [r["task_id"] for r in rows] == ["t2"]

    def test_older_records_decode_with_defaults(self) -> None:
        """A line without the newer fields reads as no verdict, no reasoning, no kind."""
        extras = decode_extras(msgspec.json.encode(episode()[0]))
        assert extras.verdict is None and extras.model_output.reasoning == ""


class TestCard:
    def test_reward_weights_are_the_engines(self) -> None:
        """The card's formula names the weights the engine scores with."""
        for name in ("exec_ok", "progress_delta", "regression", "final_match"):
            weight = re.search(rf"([0-9.]+)·{name}", REWARD_DEFINITIONS)
            assert weight is not None and float(weight.group(1)) == getattr(DEFAULT_WEIGHTS,
                                                                            name)
        srl = re.search(r"([0-9.]+)·max\(srl_similarity", REWARD_DEFINITIONS)
        assert srl is not None and float(srl.group(1)) == DEFAULT_WEIGHTS.srl_similarity

    def test_sft_export_writes_a_card_with_counts(self, tmp_path: Path) -> None:
        """README.md beside the data: front matter naming the file, counts, policies."""
        write_records(tmp_path / "run" / "part-000000.jsonl", episode("t1") + episode("t2"))
        out = tmp_path / "out" / "sft.jsonl"
        result = export_sft([tmp_path / "run"], out, Filter(), None)
        from agentd.exports.card import card_text, write_card

        card = write_card(out, card_text(out.name, "sft", result.card, summary=[],
                                         filters={"split": None}, columns="c"))
        text = card.read_text()
        assert card == tmp_path / "out" / "README.md" and result.written == 4
        assert "data_files: sft.jsonl" in text and "- rows: 4" in text
        assert "- episodes: 2" in text and "| `reference/replay` | 4 |" in text
        assert "| `c0ffee` | 4 |" in text

    def test_prompts_that_are_not_chats_are_counted_not_fatal(self, tmp_path: Path) -> None:
        """A record whose prompt is not a flat chat is left out and counted."""
        bad = sample_episode("run-1", "t9", 0, steps=2)
        write_records(tmp_path / "run" / "part-000000.jsonl", bad + episode("t1"))
        result = export_sft([tmp_path / "run"], tmp_path / "o" / "s.jsonl", Filter(), None)
        assert result.written == 2 and result.bad_prompts == 1
        groups = export_groups([tmp_path / "run"], tmp_path / "o" / "g.jsonl", Filter(), None,
                               epsilon=0.0)
        assert groups.kept == 2 and groups.export.bad_prompts == 1
