"""Attacks, each of which must fail safely with a clear error_kind.

After every attack: the call returned, no process carrying the attack's marker is alive, and
the host outside the workspace is unchanged. Hostile code runs as a task's test command
(``run_tests``), which is how arbitrary code reaches the jail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentd.records import AstGrepRule, AstGrepRun, AstGrepSearch, ReadFile
from agentd.sandbox import Sandbox
from agentd.sandbox.jails.base import JAIL_ENV

from ._helpers import JAILERS, SAMPLE, processes_with, tree
from .test_validation import BILLION_LAUGHS

SECRET = "hunter2-agentd-fake-secret"
Run = Callable[..., Any]


@pytest.fixture(params=JAILERS)
def jailer(request: pytest.FixtureRequest) -> str:
    """Every attack runs against every real backend."""
    return str(request.param)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory beside the workspaces that attacks aim at; must never change."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "target.py").write_text("x + 1\n")
    return d


@pytest.fixture
async def ws(sandbox: Sandbox, host: Path, marker: str) -> AsyncIterator[Path]:
    before = tree(host)
    workspace = await sandbox.prepare_workspace("attack", {"a.py": SAMPLE})
    yield workspace
    assert processes_with(marker) == ""
    assert tree(host) == before
    assert not Path(f"/tmp/{marker}").exists()


class TestResourceAttacks:
    async def test_fork_bomb(self, ws: Path, run_code: Run) -> None:
        """A fork bomb hits the process limit and the wall clock, and is killed whole."""
        r = await run_code(ws, "import os\nwhile True:\n  try: os.fork()\n  except OSError: pass")
        assert r.error_kind in {"timeout", "limit"}

    async def test_ten_gigabyte_file(self, ws: Path, run_code: Run) -> None:
        """Writing 10 GB stops at the file-size limit."""
        r = await run_code(ws, "f = open('big', 'wb')\nfor _ in range(10240): "
                               "f.write(b'x' * (1 << 20))")
        assert r.error_kind == "limit" and r.killed_reason == "file_size_limit"
        assert (ws / "big").stat().st_size <= 2 << 20

    async def test_many_small_files(self, ws: Path, run_code: Run) -> None:
        """Filling the workspace with files is a workspace limit."""
        r = await run_code(ws, "import os\nos.mkdir('d')\nfor i in range(1000): "
                               "open(f'd/{i}', 'w').close()")
        assert r.error_kind == "limit" and "entries" in r.error

    async def test_endless_writer_stopped_early(self, ws: Path, run_code: Run) -> None:
        """A command that never stops writing files is killed by the quota watchdog, well
        before the wall clock: the host disk never sees more than about one poll's worth."""
        r = await run_code(ws, "i = 0\nwhile True:\n  open(f'f{i}', 'wb').write(b'x' * 65536)"
                               "\n  i += 1", timeout_s=30)
        assert r.error_kind == "limit" and r.killed_reason == "workspace_limit", r

    async def test_infinite_loop(self, ws: Path, run_code: Run) -> None:
        """A busy loop ends by the CPU limit or the wall clock."""
        r = await run_code(ws, "while True: pass")
        assert r.error_kind in {"timeout", "limit"}

    async def test_sleep_forever(self, ws: Path, run_code: Run) -> None:
        """Sleeping forever is a timeout."""
        r = await run_code(ws, "import time\ntime.sleep(10**6)", timeout_s=1.0)
        assert r.error_kind == "timeout" and r.timed_out

    async def test_stdout_flood(self, ws: Path, run_code: Run) -> None:
        """Output past the cap kills the tree at once."""
        r = await run_code(ws, "import sys\nwhile True: sys.stdout.write('x' * 65536)")
        assert r.error_kind == "limit" and r.killed_reason == "output_limit"
        assert len(r.stdout) < 8192

    async def test_caller_cancels(self, ws: Path, run_code: Run, marker: str) -> None:
        """When the engine cancels a step, the jailed tree is gone when the cancel lands."""
        with anyio.move_on_after(1.0) as scope:
            await run_code(ws, "import time\ntime.sleep(600)", timeout_s=60)
        assert scope.cancelled_caught
        assert processes_with(marker) == ""

    async def test_daemon_outliving_the_run(self, ws: Path, run_code: Run, marker: str) -> None:
        """A double-forked, setsid daemon dies with the run (PID namespace teardown)."""
        code = ("import os, time\nif os.fork() == 0:\n  os.setsid()\n  if os.fork() == 0:\n"
                "    time.sleep(600)\n  os._exit(0)\nprint('parent done')")
        r = await run_code(ws, code)
        assert r.ok and "parent done" in r.stdout
        assert processes_with(marker) == ""


class TestEscapeAttacks:
    async def test_network_and_dns(self, ws: Path, run_code: Run) -> None:
        """No network: connect and DNS both fail inside the jail."""
        code = ("import socket\ntry:\n  socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                "  print('CONNECTED')\nexcept OSError as e: print('net', e.errno)\n"
                "try:\n  socket.getaddrinfo('example.com', 80)\n  print('RESOLVED')\n"
                "except OSError as e: print('dns', e.errno)")
        r = await run_code(ws, code)
        assert "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout
        assert "net 101" in r.stdout and "dns" in r.stdout

    async def test_secrets_from_env_and_proc(self, ws: Path, run_code: Run,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        """The daemon's environment is visible neither in os.environ nor in any /proc entry."""
        monkeypatch.setenv("AGENTD_FAKE_API_KEY", SECRET)
        code = ("import os\nprint(dict(os.environ))\nfor p in os.listdir('/proc'):\n"
                "  for f in ('environ', 'cmdline'):\n    try: print(open(f'/proc/{p}/{f}', "
                "'rb').read())\n    except OSError: pass\n"
                "print(open('/proc/self/status').read())")
        r = await run_code(ws, code)
        assert r.ok, r
        assert SECRET not in r.stdout + r.stderr and "AGENTD_FAKE" not in r.stdout

    async def test_identity_and_privileges(self, ws: Path, run_code: Run) -> None:
        """Not root: sandbox uid, no groups, no capabilities, no_new_privs, seccomp on."""
        r = await run_code(ws, "print(open('/proc/self/status').read())")
        status = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
        assert status["Uid"].split() == ["65534"] * 4 and status["Groups"].strip() == ""
        assert status["CapEff"].strip() == status["CapBnd"].strip() == "0000000000000000"
        assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"

    async def test_environment_is_exactly_the_jails(self, ws: Path, run_code: Run) -> None:
        """The command sees the fixed jail environment and nothing the jailer adds (bwrap's
        --chdir sets PWD to the jail's own /workspace, which says nothing about the host)."""
        code = "import os\nprint(sorted(i for i in os.environ.items() if i[0] != 'PWD'))"
        r = await run_code(ws, code)
        assert r.ok, r
        assert r.stdout.strip() == str(sorted(JAIL_ENV))

    async def test_denied_syscalls(self, ws: Path, run_code: Run, jailer: str) -> None:
        """ptrace, new user namespaces, io_uring, bpf and keyctl are refused with EPERM."""
        code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "def t(name, rc):\n  print(name, rc, ctypes.get_errno())\n"
                "t('ptrace', libc.ptrace(16, 1, 0, 0))\n"
                "t('unshare', libc.unshare(0x10000000))\n"
                "t('clone', libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))\n"
                "t('io_uring', libc.syscall(425, 1, 0))\nt('bpf', libc.syscall(321, 0, 0, 0))\n"
                "t('keyctl', libc.syscall(250, 0, 0, 0))\nt('tiocsti', libc.ioctl(0, "
                "ctypes.c_ulong((1 << 32) | 0x5412), ctypes.c_char_p(b'x')))")
        r = await run_code(ws, code)
        for name in ("ptrace", "unshare", "clone", "io_uring", "bpf", "keyctl"):
            assert f"{name} -1 1\n" in r.stdout, r.stdout
        # firejail cannot filter ioctl arguments: TIOCSTI reaches the kernel, which refuses
        # it because the command has no terminal (stdin is /dev/null). docs/jailers.md.
        allowed = {"tiocsti -1 1"} | ({"tiocsti -1 25"} if jailer == "firejail" else set())
        assert set(r.stdout.splitlines()) & allowed, r.stdout

    async def test_only_workspace_writable(self, ws: Path, run_code: Run, marker: str) -> None:
        """/usr, the venv, /etc and / are read-only; /tmp is private; no fds leak in."""
        code = (f"import os\nopen('/tmp/{marker}', 'w').write('x')\n"
                "for p in ('/usr/x', '/work/main/.venv/x', '/etc/x', '/x'):\n"
                "  try: open(p, 'w'); print('WROTE', p)\n  except OSError: pass\n"
                "try: os.link('/usr/bin/true', 'hl')\nexcept OSError as e: print('link', e.errno)\n"
                "print(sorted(os.listdir('/proc/self/fd')))")
        r = await run_code(ws, code)
        assert "WROTE" not in r.stdout and "link 18" in r.stdout
        assert "['0', '1', '2', '3']" in r.stdout

    async def test_symlink_made_by_test_command(self, sandbox: Sandbox, ws: Path,
                                                run_code: Run, host: Path) -> None:
        """A symlink the jail plants toward the host is never followed by the daemon."""
        r = await run_code(ws, f"import os\nos.symlink({str(host / 'target.py')!r}, 'evil.py')")
        assert r.ok and r.changed_files == []
        rw = await sandbox.apply_action(ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 9",
                                                       lang="python"))
        assert rw.changed_files == ["a.py"]
        bad = await sandbox.apply_action(ws, ReadFile(path="evil.py"))
        assert bad.error_kind == "path_escape"

    async def test_hardlink_made_by_test_command(self, sandbox: Sandbox, ws: Path,
                                                 run_code: Run) -> None:
        """A hard link inside the workspace makes later actions refuse it."""
        await run_code(ws, "import os\nos.link('a.py', 'b.py')")
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"))
        assert r.error_kind == "path_escape"


class TestActionAttacks:
    async def test_dotdot_and_absolute(self, sandbox: Sandbox, ws: Path) -> None:
        """'..' and absolute paths are refused before any process starts."""
        for paths in (["../host/target.py"], ["/etc/passwd"], ["a/../../x"]):
            r = await sandbox.apply_action(
                ws, AstGrepRun(pattern="$A", rewrite="1", lang="python", paths=paths))
            assert r.error_kind == "path_escape" and r.exit_code is None
        r = await sandbox.apply_action(ws, ReadFile(path="../../../etc/shadow"))
        assert r.error_kind == "path_escape"

    async def test_shipped_symlink(self, sandbox: Sandbox, ws: Path, host: Path) -> None:
        """A symlink in the workspace to a host file: explicit use refused, walks skip it."""
        (ws / "link.py").symlink_to(host / "target.py")
        (ws / "linkdir").symlink_to(host)
        act = AstGrepRun(pattern="$A + 1", rewrite="$A + 5", lang="python", paths=["link.py"])
        assert (await sandbox.apply_action(ws, act)).error_kind == "path_escape"
        via_dir = AstGrepRun(pattern="$A + 1", rewrite="$A", lang="python",
                             paths=["linkdir/target.py"])
        assert (await sandbox.apply_action(ws, via_dir)).error_kind == "path_escape"
        everything = await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 5", lang="python"))
        assert everything.changed_files == ["a.py"]
        assert (await sandbox.apply_action(ws, ReadFile(path="link.py"))).error_kind \
            == "path_escape"

    async def test_shipped_hardlink(self, sandbox: Sandbox, ws: Path, host: Path) -> None:
        """A hard link to a host file is refused and the file is not handed to the sandbox."""
        os.link(host / "target.py", ws / "h.py")
        r = await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 7", lang="python"))
        assert r.error_kind == "path_escape"
        assert (host / "target.py").stat().st_uid == 0
        (ws / "h.py").unlink()  # the host file then counts one link again

    async def test_dash_path(self, sandbox: Sandbox, ws: Path) -> None:
        """A path that looks like a flag is refused."""
        (ws / "-U").write_text("x + 1\n")
        r = await sandbox.apply_action(
            ws, AstGrepSearch(lang="python", pattern="$A", paths=["-U"]))
        assert r.error_kind == "invalid_action"

    async def test_newline_names(self, sandbox: Sandbox, ws: Path) -> None:
        """A newline in a path argument is refused; such a file elsewhere stays JSON-safe."""
        (ws / "a\nb.py").write_text("y + 1\n")
        r = await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python", paths=["a\nb.py"]))
        assert r.error_kind == "invalid_action"
        r = await sandbox.apply_action(
            ws, AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python"))
        assert r.ok and "a\\x0ab.py" in r.changed_files

    async def test_billion_laughs(self, sandbox: Sandbox, ws: Path) -> None:
        """An alias bomb in a rule is refused without expansion."""
        r = await sandbox.apply_action(ws, AstGrepRule(rule_yaml=BILLION_LAUGHS))
        assert r.error_kind == "invalid_action" and "anchors" in r.error

    async def test_rule_with_custom_languages(self, sandbox: Sandbox, ws: Path) -> None:
        """customLanguages in a rule is an unknown key."""
        rule = ("id: r\nlanguage: python\nrule: {pattern: a}\n"
                "customLanguages: {evil: {libraryPath: evil.so, extensions: [py]}}\n")
        r = await sandbox.apply_action(ws, AstGrepRule(rule_yaml=rule))
        assert r.error_kind == "invalid_action"

    @pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
    async def test_sgconfig_custom_language_library(self, sandbox: Sandbox, ws: Path) -> None:
        """A workspace sgconfig.yml naming a native library is never loaded."""
        src = ws / "evil.c"
        src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void pwn(void)'
                       ' { FILE *f = fopen("/workspace/PWNED", "w"); if (f) fclose(f); }\n')
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ws / "evil.so"), str(src)],
                       check=True)
        (ws / "sgconfig.yml").write_text(
            "ruleDirs: []\ncustomLanguages:\n  evil:\n    libraryPath: evil.so\n"
            "    extensions: [py]\nlanguageGlobs:\n  evil: ['*.py']\n")
        for action in (AstGrepRun(pattern="$A + 1", rewrite="$A + 2", lang="python"),
                       AstGrepSearch(lang="python", pattern="f($A)"),
                       AstGrepRule(rule_yaml="id: r\nlanguage: python\nrule: {pattern: a}\n")):
            r = await sandbox.apply_action(ws, action)
            assert r.error_kind == "none", r
        assert not (ws / "PWNED").exists()

    async def test_fifo_in_workspace(self, sandbox: Sandbox, ws: Path) -> None:
        """A FIFO neither blocks the walk, the tool, nor read_file."""
        os.mkfifo(ws / "pipe.py")
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="f($A)"))
        assert r.ok and len(r.matches) == 1
        assert (await sandbox.apply_action(ws, ReadFile(path="pipe.py"))).error_kind \
            == "invalid_action"
        named = AstGrepRun(pattern="$A", rewrite="1", lang="python", paths=["pipe.py"])
        assert (await sandbox.apply_action(ws, named)).error_kind == "invalid_action"

    async def test_huge_match_output(self, sandbox: Sandbox, ws: Path) -> None:
        """A search matching everything in a big file is capped, and returns."""
        (ws / "big.py").write_text("x = 1\n" * 30000)
        r = await sandbox.apply_action(ws, AstGrepSearch(lang="python", pattern="$A"))
        assert r.error_kind in {"limit", "none"}
        assert len(r.matches) <= 50 and all(len(m.text) <= 2001 for m in r.matches)
