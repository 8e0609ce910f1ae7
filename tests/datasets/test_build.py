"""End to end on a small temporary tree: fetch, build (real ast-grep, real bwrap), stats,
verify — and every bad catalog input as the operator sees it through the CLI."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from agentd.cli import main
from agentd.config import load_settings
from agentd.datasets import load_tasks, tasks_path
from agentd.datasets.verify import verify_all
from agentd.records import Task
from agentd.sandbox import Sandbox

SOURCES = {
    "alpha/__init__.py": "",
    "alpha/helpers.py": (
        "def normalise(value):\n"
        "    if value == None:\n"
        "        return dict()\n"
        "    return value\n"
    ),
    "alpha/main.py": (
        "from alpha.helpers import normalise\n\n\n"
        "def run(items):\n"
        "    out = dict()\n"
        "    for k in items.keys():\n"
        "        out[k] = normalise(items[k])\n"
        "    if not k in out:\n"
        "        return None\n"
        "    return out\n"
    ),
    "beta.py": (
        "def check(x):\n"
        "    if type(x) == int:\n"
        "        return x != None\n"
        "    try:\n"
        "        return len(x)\n"
        "    except:\n"
        "        return 0\n"
    ),
    "gamma.py": "def g(a):\n    msg = 'value %s' % a\n    return msg == None\n",
    "delta.py": "class D(object):\n    def f(self):\n        return list()\n",
    "tests/test_skip.py": "x = dict()\n",
}


def _write_tree(root: Path) -> Path:
    for rel, text in SOURCES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _set_catalog(project: Path, datasets: list[dict[str, object]], **download: object) -> Path:
    path = project / "configs" / "datasets.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["datasets"] = datasets
    doc["build"]["min_file_bytes"] = 1
    doc["download"].update(download)
    path.write_text(yaml.safe_dump(doc))
    return project / "configs" / "agentd.yaml"


def _local(src: Path) -> dict[str, object]:
    return {"name": "mini", "kind": "local_tree", "source": str(src), "license": "MIT"}


def _raw_entries(project: Path) -> list[str]:
    raw = project / "data" / "raw"
    return sorted(p.name for p in raw.iterdir()) if raw.exists() else []


@pytest.fixture
def built(tmp_project: Path, tmp_path: Path) -> Path:
    config = _set_catalog(tmp_project, [_local(_write_tree(tmp_path / "src"))])
    assert main(["data", "fetch", "--config", str(config)]) == 0
    assert main(["data", "build", "--config", str(config)]) == 0
    return config


def _all_tasks(config: Path) -> dict[str, list[Task]]:
    settings = load_settings(config)
    return {s: list(load_tasks(tasks_path(settings, s))) for s in ("train", "dev", "test")}


class TestBuild:
    def test_builds_verified_tasks_of_every_kind(self, built: Path) -> None:
        """Single, multi-step and cross-file rename tasks come out, gold parses, ids unique."""
        tasks = [t for ts in _all_tasks(built).values() for t in ts]
        recipes = {t.meta.recipe for t in tasks}
        assert {"compare-none-eq", "dict-call-to-literal", "bare-except"} <= recipes
        assert any("+" in r for r in recipes)
        assert "rename-function" in recipes
        assert len({t.task_id for t in tasks}) == len(tasks)
        for t in tasks:
            assert t.gold and set(t.gold) <= set(t.files)
            for text in t.gold.values():
                ast.parse(text)
            assert all(a.paths == sorted(t.files) for a in t.reference_actions)
        assert not any("tests/" in p for t in tasks for p in t.files)

    def test_rename_task_touches_definition_and_call_site(self, built: Path) -> None:
        """The cross-file task holds both modules and renames the import and the call."""
        tasks = [t for ts in _all_tasks(built).values() for t in ts]
        [rename] = [t for t in tasks if t.meta.recipe == "rename-function"]
        assert set(rename.files) == {"alpha/helpers.py", "alpha/main.py"}
        assert "import normalise_impl" in rename.gold["alpha/main.py"]
        assert "def normalise_impl(" in rename.gold["alpha/helpers.py"]

    def test_splits_never_share_a_source_group(self, built: Path) -> None:
        """A top-level package or module appears in one split only."""
        owner: dict[str, str] = {}
        for split, tasks in _all_tasks(built).items():
            for t in tasks:
                assert t.split == split
                for path in t.files:
                    group = path.split("/")[0].removesuffix(".py")
                    assert owner.setdefault(group, split) == split

    def test_build_is_deterministic(self, built: Path) -> None:
        """Building again from the same raw data gives byte-identical task files."""
        settings = load_settings(built)
        before = {s: tasks_path(settings, s).read_bytes() for s in ("train", "dev", "test")}
        assert main(["data", "build", "--config", str(built)]) == 0
        assert {s: tasks_path(settings, s).read_bytes() for s in before} == before

    def test_stats_and_verify_commands(self, built: Path, capsys: pytest.CaptureFixture[str],
                                       ) -> None:
        """stats prints per-split counts; verify passes, then fails once raw data is edited."""
        assert main(["data", "stats", "--config", str(built)]) == 0
        assert "total" in capsys.readouterr().out
        assert main(["data", "verify", "--config", str(built), "--sample", "3"]) == 0
        settings = load_settings(built)
        victim = settings.path(settings.agentd.paths.raw_data) / "mini" / "tree" / "beta.py"
        victim.write_text("tampered = True\n")
        assert main(["data", "verify", "--config", str(built), "--sample", "1"]) == 1
        assert "dir hash" in capsys.readouterr().out


class TestVerification:
    async def test_wrong_gold_is_dropped(self, built: Path, tmp_path: Path) -> None:
        """A task whose gold the reference actions do not reproduce is dropped and counted."""
        from collections import Counter

        import msgspec

        settings = load_settings(built)
        good = _all_tasks(built)["train"][0]
        path = next(iter(good.gold))
        bad = msgspec.structs.replace(good, task_id="tampered",
                                      gold={path: good.gold[path] + "# extra\n"})
        sandbox = Sandbox(settings.sandbox, workspaces_dir=tmp_path / "ws",
                          log_dir=tmp_path / "logs")
        drops: Counter[str] = Counter()
        kept = await verify_all(sandbox, [good, bad], runs=2, concurrency=2, drops=drops)
        assert kept == [good]
        assert drops == {"gold_mismatch": 1}


class _Archive(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def archive_server() -> Iterator[tuple[str, type[_Archive]]]:
    handler = type("H", (_Archive,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/a.tar.gz", handler
    httpd.shutdown()
    httpd.server_close()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _http(url: str, body: bytes, **over: object) -> dict[str, object]:
    entry: dict[str, object] = {"name": "web", "kind": "http_archive", "source": url,
                                "license": "MIT", "allow_http": True,
                                "sha256": hashlib.sha256(body).hexdigest()}
    entry.update(over)
    return entry


class TestBadInput:
    @pytest.mark.parametrize(("entry", "needle"), [
        ({"name": "x", "kind": "git_repo", "source": "y", "license": "MIT"}, "git_repo"),
        ({"name": "x", "kind": "pypi_sdist", "source": "six", "version": "1.16.0",
          "license": "MIT"}, "sha256"),
        ({"name": "x", "kind": "http_archive", "source": "https://h/a.tgz", "license": "MIT",
          "sha256": "abc"}, "sha256"),
    ])
    def test_bad_catalog_is_one_line_exit_2(self, tmp_project: Path, entry: dict[str, object],
                                            needle: str, capsys: pytest.CaptureFixture[str],
                                            ) -> None:
        """Unknown kind, missing or malformed hash: exit 2, one line naming the problem."""
        config = _set_catalog(tmp_project, [entry])
        assert main(["data", "fetch", "--config", str(config)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err and "datasets.yaml" in err

    def test_unknown_dataset_name(self, built: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Naming an entry that is not in the catalog is a usage error."""
        assert main(["data", "fetch", "--config", str(built), "nope"]) == 2
        assert "unknown dataset 'nope'" in capsys.readouterr().err

    def test_http_archive_fetches_over_loopback_when_allowed(
            self, tmp_project: Path, archive_server: tuple[str, type[_Archive]]) -> None:
        """A good archive is downloaded, verified, extracted and hashed."""
        url, handler = archive_server
        handler.body = _targz({"proj/m.py": b"x = dict()\n"})
        config = _set_catalog(tmp_project, [_http(url, handler.body)],
                              allow_loopback_for_tests=True)
        assert main(["data", "fetch", "--config", str(config)]) == 0
        tree = tmp_project / "data" / "raw" / "web" / "tree"
        assert (tree / "proj" / "m.py").read_text() == "x = dict()\n"
        assert _raw_entries(tmp_project) == ["web"]

    @pytest.mark.parametrize("case", ["wrong_hash", "private", "traversal", "symlink", "bomb"])
    def test_bad_archive_exit_1_nothing_written(
            self, tmp_project: Path, archive_server: tuple[str, type[_Archive]], case: str,
            capsys: pytest.CaptureFixture[str]) -> None:
        """Each bad source stops with one line naming the entry and leaves data/raw empty."""
        url, handler = archive_server
        members = {"traversal": {"../../escape.py": b"x = 1\n"},
                   "bomb": {"zeros.py": b"\0" * (8 << 20)}}.get(case, {"ok.py": b"x = 1\n"})
        handler.body = _targz(members)
        if case == "symlink":
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tf:
                info = tarfile.TarInfo("proj/evil")
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
                tf.addfile(info)
            handler.body = buf.getvalue()
        entry = _http(url, handler.body)
        if case == "wrong_hash":
            entry["sha256"] = "f" * 64
        config = _set_catalog(tmp_project, [entry],
                              allow_loopback_for_tests=case != "private")
        assert main(["data", "fetch", "--config", str(config)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "'web'" in err
        assert _raw_entries(tmp_project) == []

    def test_pypi_sdist_wrong_hash(self, tmp_project: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
        """pip --require-hashes refuses an sdist whose hash differs from the pin."""
        links = tmp_path / "links"
        links.mkdir()
        (links / "tinypkg-1.0.tar.gz").write_bytes(_targz({"tinypkg-1.0/t.py": b"x = 1\n"}))
        entry = {"name": "tiny", "kind": "pypi_sdist", "source": "tinypkg", "version": "1.0",
                 "license": "MIT", "sha256": "e" * 64}
        config = _set_catalog(tmp_project, [entry], pip_find_links=str(links))
        assert main(["data", "fetch", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert "UnsafeSourceError" in err and "'tiny'" in err
        assert _raw_entries(tmp_project) == []


TEST_BETA = (
    "import unittest\n"
    "from beta import check\n\n\n"
    "class TestCheck(unittest.TestCase):\n"
    "    def test_check(self):\n"
    "        self.assertIs(check(3), True)\n"
    "        self.assertEqual(check('ab'), 2)\n"
    "        self.assertEqual(check(None), 0)\n"
)


class TestBuildWithTests:
    """A library entry and a test-suite entry: tasks of a module the suite tests get a spec
    that the build ran in the jail; the others get none."""

    @pytest.fixture
    def built_with_tests(self, tmp_project: Path, tmp_path: Path) -> Path:
        suite = tmp_path / "suite"
        suite.mkdir()
        (suite / "test_beta.py").write_text(TEST_BETA)
        config = _set_catalog(tmp_project, [
            _local(_write_tree(tmp_path / "src")),
            {"name": "mini-tests", "kind": "local_tree", "source": str(suite),
             "license": "MIT"}])
        path = tmp_project / "configs" / "datasets.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["build"]["tests"] = {"dataset": "mini", "suite": "mini-tests"}
        path.write_text(yaml.safe_dump(doc))
        assert main(["data", "build", "--config", str(config)]) == 0
        return config

    def test_specs_only_where_the_suite_tests_the_module(
            self, built_with_tests: Path, capsys: pytest.CaptureFixture[str]) -> None:
        tasks = [t for ts in _all_tasks(built_with_tests).values() for t in ts]
        tested = [t for t in tasks if t.test_spec is not None]
        assert tested, "beta's tasks should carry a spec"
        assert {t.meta.source_path for t in tested} == {"beta.py"}
        assert all(t.meta.dataset == "mini" for t in tested)
        assert all("test/test_beta.py" in (t.test_spec.files if t.test_spec else {})
                   for t in tested)
        settings = load_settings(built_with_tests)
        stats = json.loads((settings.path(settings.agentd.paths.processed_data)
                            / "stats.json").read_text())
        assert sum(s["with_tests"] for s in stats["splits"].values()) == len(tested)
        assert stats["tests"]["tasks"]["with_spec"] == len(tested)
        capsys.readouterr()
        assert main(["data", "stats", "--config", str(built_with_tests)]) == 0
        assert f"{len(tested)} with tests" in capsys.readouterr().out
        assert main(["data", "verify", "--config", str(built_with_tests), "--sample", "1"]) == 0
