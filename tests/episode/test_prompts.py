"""Prompt rendering from the configured templates, and observations of the last step."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.config import PromptTemplates, load_model
from agentd.episode.prompts import (
    FewShotExample,
    few_shot_example,
    files_block,
    fill,
    observation_from_result,
    render_prompt,
)
from agentd.episode.protocol import ParsedOutput, ParseError, parse
from agentd.errors import ConfigError
from agentd.records import AstGrepRun, Match, SandboxResult, Task, TaskMeta

STATE = "<state>\ngoals: (none)\n</state>"


def _task(**files: str) -> Task:
    return Task(
        task_id="t-1", split="dev", language="python",
        instruction="Replace print(...) with logger.info(...).",
        files=files or {"app/main.py": "print(1)\nprint(2)\n"}, gold={},
        reference_actions=[AstGrepRun(pattern="print($$$A)", lang="python",
                                      rewrite="logger.info($$$A)")],
        meta=TaskMeta("d", "app/main.py", "print_to_logger", "MIT", "0" * 64),
    )


@pytest.fixture(params=["prompts.yaml", "teacher_prompts.yaml"])
def templates(request: pytest.FixtureRequest, project_root: Path) -> PromptTemplates:
    return load_model(PromptTemplates, project_root / "configs" / request.param)


class TestRenderPrompt:
    def test_messages_shape(self, templates: PromptTemplates) -> None:
        """A system message, then one user message with task, state and reminder."""
        prompt = render_prompt(templates, _task(), STATE, None, 0)
        assert [m["role"] for m in prompt.messages] == ["system", "user"]
        user = prompt.messages[1]["content"]
        assert "Replace print(...)" in user
        assert STATE in user
        assert "print(2)" in user  # file preview
        assert "first step" in user
        assert "Step 1 of 8" in user
        assert '"tool": "ast_grep_run"' in prompt.messages[0]["content"]

    def test_observation_replaces_first_step_text(self, templates: PromptTemplates) -> None:
        """From the second step on the last observation is shown instead."""
        prompt = render_prompt(templates, _task(), STATE, "exit code 0; changed: a.py", 3)
        user = prompt.messages[-1]["content"]
        assert "exit code 0; changed: a.py" in user
        assert "first step" not in user
        assert "Step 4 of 8 (5 left" in user

    def test_deterministic(self, templates: PromptTemplates) -> None:
        """The same inputs render the same text and the same hash."""
        a = render_prompt(templates, _task(), STATE, "obs", 1)
        b = render_prompt(templates, _task(), STATE, "obs", 1)
        assert a == b
        assert a.text.startswith("[system]\n")

    def test_template_hash_stable_and_sensitive(self, templates: PromptTemplates) -> None:
        """The hash is a fixed function of the templates and changes with any edit."""
        again = PromptTemplates.model_validate(templates.model_dump())
        assert again.template_hash == templates.template_hash
        edited = templates.model_copy(update={"format_reminder": "x"})
        assert edited.template_hash != templates.template_hash
        assert render_prompt(templates, _task(), STATE, None, 0).template_hash == (
            templates.template_hash
        )

    def test_max_steps_override(self, templates: PromptTemplates) -> None:
        """The runner's effective step limit wins over the task's."""
        prompt = render_prompt(templates, _task(), STATE, None, 0, max_steps=3)
        assert "Step 1 of 3" in prompt.messages[-1]["content"]

    def test_hostile_text_not_expanded(self, templates: PromptTemplates) -> None:
        """Placeholders inside task text or observations are not substituted again."""
        prompt = render_prompt(templates, _task(), STATE, "{state} {instruction}", 1)
        assert "{state} {instruction}" in prompt.messages[-1]["content"]

    def test_few_shot_pairs(self, templates: PromptTemplates) -> None:
        """Few-shot examples come as user/assistant pairs before the real question."""
        example = few_shot_example(_task())
        prompt = render_prompt(templates, _task(), STATE, None, 0, few_shot=[example, example])
        roles = [m["role"] for m in prompt.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        assert prompt.messages[2]["content"] == example.output
        assert isinstance(parse(example.output), ParsedOutput)
        assert "print(2)" not in prompt.messages[1]["content"]  # examples list files only


class TestTemplates:
    def test_unknown_placeholder_is_config_error(self, tmp_path: Path) -> None:
        """A typo in a placeholder fails at load with the field named."""
        path = tmp_path / "p.yaml"
        path.write_text("task: 'do {instructions}'\n")
        with pytest.raises(ConfigError, match="instructions"):
            load_model(PromptTemplates, path)

    def test_json_braces_are_literal(self) -> None:
        """JSON in templates needs no escaping; only known names are filled."""
        assert fill('{"tool": "submit"} {step} {x}', {"step": "2"}) == '{"tool": "submit"} 2 {x}'

    def test_teacher_asks_for_few_shot(self, project_root: Path) -> None:
        """The teacher templates are versioned and ask for two examples."""
        teacher = load_model(PromptTemplates, project_root / "configs" / "teacher_prompts.yaml")
        assert teacher.few_shot == 2
        assert teacher.version.startswith("teacher-")


class TestFilesBlock:
    def test_preview_bounded(self) -> None:
        """A file over the budget is windowed, with the lines not shown named for read_file."""
        big = "".join(f"line {i}\n" for i in range(1000))
        block = files_block({"a.py": big, "b.py": "x\n"}, 200)
        assert "- a.py (1000 lines)" in block
        assert "- b.py (1 lines)" in block
        assert "read_file shows the rest" in block and "lines 8-1000 not shown" in block
        assert len(block) < 400

    def test_listing_bounded(self) -> None:
        """Huge workspaces list a bounded number of files."""
        block = files_block({f"f{i}.py": "" for i in range(500)}, 0)
        assert "and 470 more files" in block
        assert block.count("\n") < 40

    def test_few_shot_needs_reference(self) -> None:
        """A task without reference actions cannot be an example."""
        task = Task(task_id="x", split="train", language="python", instruction="i", files={},
                    gold={}, reference_actions=[], meta=_task().meta)
        with pytest.raises(ValueError, match="no reference"):
            few_shot_example(task)

    def test_example_struct(self) -> None:
        """few_shot_example renders the first reference action canonically."""
        example = few_shot_example(_task())
        assert isinstance(example, FewShotExample)
        assert '"rewrite":"logger.info($$$A)"' in example.output


class TestObservation:
    def test_parse_error(self) -> None:
        """A rejected answer tells the model why and that nothing ran."""
        error = parse("no tags at all")
        assert isinstance(error, ParseError)
        text = observation_from_result(None, error)
        assert "missing_tag" in text
        assert "Nothing was run" in text

    def test_write_result(self) -> None:
        """A write shows the exit code, the changed files and the diff."""
        result = SandboxResult(exit_code=0, changed_files=["a.py"],
                               diff="--- a/a.py\n+++ b/a.py\n@@\n-print(1)\n+log(1)\n")
        text = observation_from_result(result, None)
        assert text.startswith("exit code 0; changed: a.py")
        assert "+log(1)" in text

    def test_matches_listed_and_bounded(self) -> None:
        """Search matches are listed one line each, at most 15, with replacements."""
        matches = [Match("a.py", i, i, f"print({i})\nmore", replacement=f"log({i})")
                   for i in range(1, 40)]
        text = observation_from_result(SandboxResult(exit_code=0, matches=matches), None)
        assert "39 match(es)" in text
        assert "- a.py:1: print(1)  =>  log(1)" in text
        assert "… 24 more" in text
        assert "more\n" not in text

    def test_errors_and_timeouts(self) -> None:
        """Sandbox refusals and timeouts are named."""
        refused = SandboxResult(exit_code=None, error_kind="path_escape", error="../etc/passwd")
        assert "failed (path_escape): ../etc/passwd" in observation_from_result(refused, None)
        timed = SandboxResult(exit_code=None, timed_out=True, error_kind="timeout")
        assert "timed out" in observation_from_result(timed, None)

    def test_read_file_output(self) -> None:
        """Output without matches (read_file, tests) is shown."""
        result = SandboxResult(exit_code=0, stdout="1: import os\n", stderr="warn")
        text = observation_from_result(result, None)
        assert "output:\n1: import os" in text
        assert "stderr:\nwarn" in text

    def test_bounded(self) -> None:
        """Whatever the result holds, the observation stays within its cap."""
        result = SandboxResult(exit_code=1, stdout="o" * 10**6, stderr="e" * 10**6,
                               diff="d" * 10**6, error="x" * 10**6, error_kind="tool_error",
                               changed_files=[f"f{i}" for i in range(1000)])
        text = observation_from_result(result, None, max_chars=3000)
        assert len(text) <= 3000
        assert "more characters" in text
