"""The viewer's site: structure, paging, escaping, safe replacement, the CLI and --serve."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from agentd.cli import main
from agentd.errors import UsageError
from agentd.records import AstGrepRule, ModelOutput, TrajectoryRecord
from agentd.testing.export_runs import reference_run
from agentd.testing.samples import sample_episode
from agentd.viewer.serve import make_server
from agentd.viewer.site import MARKER, build_site

ATTACK = '<script>alert("x")</script><img src=http://example.invalid/x.png>'


def write(path: Path, records: list[TrajectoryRecord]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    return path.parent


def many_episodes(n: int) -> list[TrajectoryRecord]:
    out: list[TrajectoryRecord] = []
    for i in range(n):
        out += sample_episode("big", f"task-{i % 7}", i, steps=2)
    return out


class TestStructure:
    def test_pages_for_runs_tasks_episodes_and_filters(self, tmp_path: Path) -> None:
        """25 episodes of 7 tasks in pages of 10: three pages per full listing, one page
        per episode and per task, and the failed listing empty (every episode accepted)."""
        run = write(tmp_path / "run" / "part-000000.jsonl", many_episodes(25))
        result = build_site([run], tmp_path / "site", "big", page_size=10)
        site = result.out
        assert (result.episodes, result.tasks) == (25, 7)
        assert len(list((site / "episode").glob("*.html"))) == 25
        assert len(list((site / "task").glob("*.html"))) == 7
        listing = sorted((site / "episodes" / "all--all").glob("page-*.html"))
        assert len(listing) == 3
        rows = [len(re.findall(r"<tr data-tags=", p.read_text())) for p in listing]
        assert rows == [10, 10, 5]
        failed = (site / "episodes" / "failed--all" / "page-0001.html").read_text()
        assert "<tr data-tags=" not in failed
        assert 'href="page-0002.html"' in listing[0].read_text()

    def test_episode_page_holds_every_part_of_a_step(self, tmp_path: Path) -> None:
        """A rule is highlighted, the diff marked, rewards and states shown."""
        run = write(tmp_path / "run" / "part-000000.jsonl", sample_episode(steps=2))
        site = build_site([run], tmp_path / "site", "r").out
        text = (site / "episode" / "e000001.html").read_text()
        assert '<span class="y-key">id</span>' in text and 'class="y-meta">$$$ARGS' in text
        assert '<span class="add">+    logging.info' in text
        assert 'id="step-0"' in text and 'id="step-1"' in text
        assert "state before" in text and "srl_similarity" in text

    def test_hostile_text_is_escaped_and_nothing_is_fetched(self, tmp_path: Path) -> None:
        """Model output with markup appears as text; the page allows no network access."""
        rec = sample_episode(steps=1)[0]
        bad = msgspec.structs.replace(rec, model_output=ModelOutput(
            raw=ATTACK, think=ATTACK, action=AstGrepRule(rule_yaml=f"id: {ATTACK}\n")))
        run = write(tmp_path / "run" / "part-000000.jsonl", [bad])
        site = build_site([run], tmp_path / "site", "r").out
        text = (site / "episode" / "e000001.html").read_text()
        assert "<script>alert" not in text and "<img src=http" not in text
        assert "&lt;script&gt;alert" in text
        assert "default-src 'none'" in text
        markup = re.sub(r"&lt;.*?&gt;", "", text)  # what remains is the page's own markup
        assert not re.search(r"""(src|href)=["']?(https?:|//)""", markup)


    def test_newer_fields_show_when_present(self, tmp_path: Path) -> None:
        """A verdict, native reasoning and the step kind appear once the records carry them."""
        lines = []
        for rec in sample_episode(steps=2):
            data = msgspec.to_builtins(rec)
            data["model_output"]["reasoning"] = "native channel text"
            data["reward"]["step_kind"] = "submit" if rec.done else "write"
            if rec.done:
                data["verdict"] = {"accepted": False, "decided_by": "fresh-sandbox",
                                   "checks": [{"name": "tests_pass", "ok": False,
                                               "detail": "1 failed"}]}
            lines.append(msgspec.json.encode(data) + b"\n")
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "part-000000.jsonl").write_bytes(b"".join(lines))
        site = build_site([tmp_path / "run"], tmp_path / "site", "r").out
        text = (site / "episode" / "e000001.html").read_text()
        assert "native channel text" in text and "tests_pass" in text
        assert "fresh-sandbox" in text and ">rejected</span>" in text and ">submit<" in text
        assert "failed--all" in (site / "index.html").read_text()
        failed = (site / "episodes" / "failed--all" / "page-0001.html").read_text()
        assert failed.count("<tr data-tags=") == 1  # the verdict overrides the final match


class TestReplacement:
    def test_an_unrelated_directory_is_never_replaced(self, tmp_path: Path) -> None:
        """--out naming a directory that is not a site is refused, and left alone."""
        run = write(tmp_path / "run" / "part-000000.jsonl", sample_episode())
        precious = tmp_path / "precious"
        precious.mkdir()
        (precious / "notes.txt").write_text("keep me")
        with pytest.raises(UsageError, match="not a viewer site"):
            build_site([run], precious, "r")
        assert (precious / "notes.txt").read_text() == "keep me"

    def test_a_rebuild_replaces_the_old_site_whole(self, tmp_path: Path) -> None:
        """Building again swaps in the new site; nothing of the old one stays."""
        run = write(tmp_path / "run" / "part-000000.jsonl", many_episodes(3))
        site = build_site([run], tmp_path / "site", "r").out
        (site / "stale.html").write_text("old")
        build_site([run], site, "r")
        assert (site / MARKER).is_file() and not (site / "stale.html").exists()
        assert not list(tmp_path.glob(".site.*"))


class TestCommand:
    async def test_view_a_run_by_id(self, tmp_project: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
        """``agentd view RUN_ID`` finds the run's shards and writes reports/view/RUN_ID."""
        await reference_run(tmp_project, run_id="seen")
        config = str(tmp_project / "configs" / "agentd.yaml")
        assert main(["view", "--config", config, "seen"]) == 0
        site = tmp_project / "reports" / "view" / "seen"
        assert (site / "index.html").is_file()
        assert "6 episodes of 3 tasks" in capsys.readouterr().out

    def test_an_unknown_run_is_one_line_and_exit_2(self, tmp_project: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        config = str(tmp_project / "configs" / "agentd.yaml")
        assert main(["view", "--config", config, "nope"]) == 2
        err = capsys.readouterr().err
        assert "no run 'nope'" in err and len(err.splitlines()) == 1


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    run = write(tmp_path / "run" / "part-000000.jsonl", sample_episode())
    site = build_site([run], tmp_path / "site", "r").out
    server = make_server(site, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestServe:
    def test_serves_the_site_on_loopback_only(self, served: str) -> None:
        """The site over HTTP on 127.0.0.1; paths outside it are not served."""
        assert served.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False) as client:
            index = client.get(f"{served}/index.html")
            assert index.status_code == 200 and "Run r" in index.text
            assert client.get(f"{served}/../../etc/passwd").status_code == 404
