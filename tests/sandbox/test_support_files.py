"""A test spec's support files: validated before any process, read-only in the real jail,
never in the workspace."""

from __future__ import annotations

import msgspec
import pytest

from agentd.records import RunTests, Task, TaskMeta, TestSpec
from agentd.sandbox import Sandbox
from agentd.sandbox.paths import ActionRejected
from agentd.sandbox.plans import DATA, MAX_SUPPORT_FILES, plan_tests

ALLOW = frozenset({"python"})
CHECK = (
    "import os, sys\n"
    "here = os.path.dirname(os.path.abspath(__file__))\n"
    "print(open(os.path.join(here, 'data.txt')).read().strip())\n"
    "print(sorted(os.listdir('.')))\n"
    "try:\n"
    "    open(__file__, 'a')\n"
    "except OSError:\n"
    "    print('read-only')\n"
)


def _spec(files: dict[str, str], *argv: str) -> TestSpec:
    return TestSpec(argv=["python", *argv], timeout_s=10, files=files)


def test_support_argument_becomes_a_data_file() -> None:
    plan = plan_tests(_spec({"a/run.py": "x"}, "-S", "{support}/a/run.py", "arg"), ALLOW)
    assert plan.args == ("-S", f"{DATA}support/a/run.py", "arg")
    assert plan.data == (("support/a/run.py", b"x"),)


@pytest.mark.parametrize("path", ["../x.py", "/etc/x.py", "a/../../x.py", "a//b.py", "./a.py",
                                  "a/", "", "a\\b.py", "a\nb.py"])
def test_escaping_support_paths_are_refused(path: str) -> None:
    with pytest.raises(ActionRejected) as info:
        plan_tests(_spec({path: "x"}, "-c", "pass"), ALLOW)
    assert info.value.kind == "invalid_action"


def test_support_argument_must_name_a_support_file() -> None:
    with pytest.raises(ActionRejected, match="names no support file"):
        plan_tests(_spec({"run.py": "x"}, "{support}/other.py"), ALLOW)


def test_support_files_are_bounded() -> None:
    many = {f"f{i}.py": "" for i in range(MAX_SUPPORT_FILES + 1)}
    with pytest.raises(ActionRejected, match="support files"):
        plan_tests(_spec(many, "-c", "pass"), ALLOW)


@pytest.mark.parametrize("jailer", ["bwrap", "firejail"])
async def test_support_files_are_read_only_in_the_jail_and_absent_from_the_workspace(
        sandbox: Sandbox) -> None:
    ws = await sandbox.prepare_workspace("support", {"mod.py": "X = 1\n"})
    spec = _spec({"deep/er/check.py": CHECK, "deep/er/data.txt": "shipped"},
                 "{support}/deep/er/check.py")
    result = await sandbox.apply_action(ws, RunTests(), test_spec=spec)
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == ["shipped", "['mod.py']", "read-only"]
    assert result.changed_files == []
    assert await sandbox.read_files(ws) == {"mod.py": "X = 1\n"}


def test_specs_without_files_still_decode_and_files_survive_a_round_trip() -> None:
    old = b'{"argv":["python","-m","pytest"],"timeout_s":30.0}'
    assert msgspec.json.decode(old, type=TestSpec) == TestSpec(["python", "-m", "pytest"], 30.0)
    meta = TaskMeta("d", "m.py", "r", "MIT", "0" * 64)
    task = Task("t", "dev", "python", "do it", {"m.py": "X = 1\n"}, {"m.py": "X = 2\n"}, [],
                meta, test_spec=_spec({"t/run.py": "print(1)\n"}, "{support}/t/run.py"))
    back = msgspec.json.decode(msgspec.json.encode(task), type=Task)
    assert back == task
    assert back.test_spec is not None and back.test_spec.files == {"t/run.py": "print(1)\n"}

