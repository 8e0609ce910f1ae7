"""Unit tests: argv assembly of every jail backend and of the ast-grep commands."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from agentd.config import SandboxConfig
from agentd.errors import JailUnavailableError
from agentd.records import AstGrepRule, AstGrepRun, AstGrepSearch, TestSpec
from agentd.sandbox.binaries import resolve_binary
from agentd.sandbox.jails import DataFile, JailRun, select_jail
from agentd.sandbox.jails.base import prlimit_argv, setpriv_argv
from agentd.sandbox.jails.bwrap import BwrapJail
from agentd.sandbox.jails.firejail import FirejailJail
from agentd.sandbox.jails.none import UnjailedRunner
from agentd.sandbox.plans import DATA, plan_action

from ._helpers import FAST_LIMITS

RUN = JailRun(
    command=("/opt/bin/tool", "--", "a.py"), workspace=Path("/srv/ws/t-1"), limits=FAST_LIMITS,
    ro_paths=(Path("/opt/venv"),), data_files=(DataFile("/agentd/rule.yml", 7),),
    seccomp_fd=9, uid=65534, gid=65534,
)


def after_double_dash(argv: list[str]) -> list[str]:
    return argv[argv.index("--") + 1:]


class TestWrappers:
    def test_prlimit_sets_every_limit(self) -> None:
        """prlimit carries cpu, address space, file size, files and no core; never a
        process count (RLIMIT_NPROC is per host uid: the action's cgroup caps processes)."""
        argv = prlimit_argv(FAST_LIMITS)
        assert argv[0] == "/usr/bin/prlimit" and argv[-1] == "--"
        assert {"--cpu=2:3", f"--as={1024 << 20}", f"--fsize={2 << 20}", "--nofile=64",
                "--core=0"} <= set(argv)
        assert not any(a.startswith("--nproc") for a in argv)

    def test_setpriv_drops_everything(self) -> None:
        """setpriv switches real and effective ids, clears groups, caps and sets no_new_privs."""
        argv = setpriv_argv(65534, 65534)
        for flag in ("--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
                     "--bounding-set=-all", "--inh-caps=-all"):
            assert flag in argv

    def test_no_setpriv_without_target(self) -> None:
        """A non-root daemon has nothing to drop."""
        assert setpriv_argv(None, None) == []


class TestBwrap:
    def test_namespaces_and_lifetime_flags(self) -> None:
        """New pid/net/ipc/uts namespaces, die-with-parent, new session, no inherited env."""
        argv = BwrapJail().build(RUN)
        for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                     "--die-with-parent", "--new-session", "--clearenv"):
            assert flag in argv
        assert "--unshare-all" not in argv  # would add a user ns with the sandbox uid unmapped

    def test_mounts_workspace_rw_and_rest_ro(self) -> None:
        """Only the workspace is bound read-write, at the fixed jail path."""
        argv = BwrapJail().build(RUN)
        head = argv[: argv.index("--")]
        rw = [head[i + 1] for i, a in enumerate(head) if a == "--bind"]
        assert rw == ["/srv/ws/t-1"]
        assert head[head.index("--bind") + 2] == "/workspace"
        at = head.index("/opt/venv")
        assert head[at - 1: at + 2] == ["--ro-bind", "/opt/venv", "/opt/venv"]

    def test_seccomp_and_data_fds(self) -> None:
        """The filter and data files are passed by fd number."""
        argv = BwrapJail().build(RUN)
        assert argv[argv.index("--seccomp") + 1] == "9"
        i = argv.index("--ro-bind-data")
        assert argv[i + 1: i + 3] == ["7", "/agentd/rule.yml"]

    def test_command_after_wrappers(self) -> None:
        """bwrap -- prlimit … -- setpriv … -- command, in that order."""
        tail = after_double_dash(BwrapJail().build(RUN))
        assert tail[0] == "/usr/bin/prlimit"
        assert tail[-3:] == ["/opt/bin/tool", "--", "a.py"]
        assert "/usr/bin/setpriv" in tail

    def test_ast_grep_profile_is_minimal(self) -> None:
        """Without full_os there is no /proc and /dev holds only /dev/null."""
        argv = BwrapJail().build(replace(RUN, full_os=False))
        assert "--proc" not in argv and "--dev" not in argv
        assert argv[argv.index("--dev-bind") + 1: argv.index("--dev-bind") + 3] == \
            ["/dev/null", "/dev/null"]

    def test_mount_point_parents_are_traversable(self) -> None:
        """Parents of bound paths are created 0755 (bwrap would make them root-only)."""
        argv = BwrapJail().build(RUN)
        at = argv.index("/opt")
        assert argv[at - 3: at + 1] == ["--perms", "0755", "--dir", "/opt"]

    def test_env_is_explicit(self) -> None:
        """Only the fixed jail environment is set; nothing else."""
        argv = BwrapJail().build(RUN)
        keys = [argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"]
        assert "HOME" in keys and "PATH" in keys
        assert all(not k.startswith(("AWS", "OPENAI", "AGENTD")) for k in keys)


class TestOtherBackends:
    def test_firejail_confines(self) -> None:
        """firejail: no network, read-only root, workspace writable, seccomp, uid drop."""
        argv = FirejailJail().build(RUN)
        for flag in ("--net=none", "--nonewprivs", "--read-only=/", "--noprofile",
                     "--read-write=/srv/ws/t-1", "--restrict-namespaces",
                     "--seccomp.block-secondary", "--deterministic-shutdown"):
            assert flag in argv
        seccomp = next(a for a in argv if a.startswith("--seccomp="))
        assert {"ptrace", "bpf", "io_uring_setup", "keyctl"} <= set(seccomp[10:].split(","))
        assert FirejailJail().cwd(RUN) == RUN.workspace

    def test_firejail_never_hands_the_command_to_a_shell(self) -> None:
        """No "--": with it firejail runs the command through bash -c."""
        argv = FirejailJail().build(RUN)
        start = argv.index("/usr/bin/prlimit")
        assert "--" not in argv[:start] and argv[-3:] == list(RUN.command)

    def test_firejail_keeps_only_the_caps_setpriv_needs(self) -> None:
        """Inside firejail, only prlimit runs before setpriv drops to the sandbox uid; the
        environment is reset after the drop."""
        argv = FirejailJail().build(RUN)
        assert "--caps.keep=setuid,setgid,setpcap" in argv
        inner = argv[argv.index("/usr/bin/prlimit"):]
        setpriv = inner.index("/usr/bin/setpriv")
        assert inner[setpriv + 1] == "--reuid=65534" and "--bounding-set=-all" in inner
        env = inner.index("/usr/bin/env")
        assert setpriv < env and inner[env + 1] == "-i" and "HOME=/tmp" in inner

    def test_firejail_whitelists_tmp_and_root_paths(self) -> None:
        """A workspace in /tmp and binaries under /root are brought into the jail."""
        run = replace(RUN, workspace=Path("/tmp/w/t-1"),
                      ro_paths=(Path("/root/.pyenv/versions/3.11"),))
        argv = FirejailJail().build(run)
        assert "--whitelist=/tmp/w/t-1" in argv and "--private-tmp" in argv
        assert "--whitelist=/root/.pyenv/versions/3.11" in argv and "--bind=/root,/srv" in argv
        assert not any(a.startswith("--whitelist") for a in FirejailJail().build(RUN))

    def test_firejail_whitelists_binaries_under_tmp(self) -> None:
        """A checkout cloned into /tmp keeps its venv's ast-grep visible behind --private-tmp."""
        run = replace(RUN, ro_paths=(Path("/tmp/clone/.venv/bin"),))
        assert "--whitelist=/tmp/clone/.venv/bin" in FirejailJail().build(run)

    def test_firejail_seccomp_follows_config(self) -> None:
        """seccomp: false removes firejail's filters too."""
        argv = FirejailJail().build(replace(RUN, seccomp=False))
        assert not any(a.startswith(("--seccomp", "--restrict")) for a in argv)

    def test_none_runs_wrappers_only(self) -> None:
        """The unjailed runner still applies limits and the uid drop, in the workspace."""
        argv = UnjailedRunner().build(RUN)
        assert argv[0] == "/usr/bin/prlimit" and argv[-1] == "a.py"
        assert UnjailedRunner().cwd(RUN) == RUN.workspace
        assert UnjailedRunner().data_path(RUN.data_files[0]) == "/dev/fd/7"


class TestBinaries:
    def test_native_binary_binds_only_itself(self) -> None:
        """ast-grep (an ELF file) needs only its own file in the jail."""
        sg = resolve_binary("ast-grep")
        assert sg.mounts == (sg.path,)

    def test_venv_python_binds_venv_and_base(self) -> None:
        """The venv interpreter brings the venv and its base installation."""
        py = resolve_binary("python")
        assert Path(sys.prefix) in py.mounts and py.path.is_relative_to(sys.prefix)

    def test_unknown_binary(self) -> None:
        """A name that exists nowhere is not silently mapped."""
        with pytest.raises(JailUnavailableError):
            resolve_binary("no-such-tool-agentd")


class TestSelectJail:
    @pytest.mark.parametrize(("name", "cls"), [("bwrap", BwrapJail), ("firejail", FirejailJail)])
    def test_by_config(self, name: str, cls: type) -> None:
        """The config names the backend."""
        assert isinstance(select_jail(SandboxConfig(jailer=name)), cls)  # type: ignore[arg-type]

    def test_nsjail_refused_by_name(self) -> None:
        """nsjail is named in the plan but unavailable: refused at config load, clearly."""
        with pytest.raises(ValueError, match="nsjail' is unavailable"):
            SandboxConfig(jailer="nsjail")
        with pytest.raises(JailUnavailableError):
            select_jail(SandboxConfig.model_construct(jailer="nsjail"))

    def test_none_needs_consent(self) -> None:
        """jailer none is accepted only with allow_unjailed."""
        assert isinstance(select_jail(SandboxConfig(jailer="none", allow_unjailed=True)),
                          UnjailedRunner)
        with pytest.raises(ValueError, match="allow_unjailed"):
            SandboxConfig(jailer="none")

    def test_none_refused_even_if_model_bypassed(self) -> None:
        """select_jail re-checks consent."""
        cfg = SandboxConfig.model_construct(jailer="none", allow_unjailed=False)
        with pytest.raises(JailUnavailableError):
            select_jail(cfg)


class TestToolArgv:
    def plan(self, action: object, ws: Path) -> tuple[str, ...]:
        return plan_action(action, ws, FAST_LIMITS, test_spec=None,  # type: ignore[arg-type]
                           allowlist=frozenset({"ast-grep"})).args

    def test_run_rewrite(self, tmp_path: Path) -> None:
        """CLI form: values glued with '=', our config, one thread, update-all, paths last."""
        (tmp_path / "a.py").write_text("x")
        args = self.plan(AstGrepRun(pattern="-$A", rewrite="-1", lang="Python",
                                    paths=["./a.py"]), tmp_path)
        assert args[0] == "run"
        assert f"--config={DATA}sgconfig.yml" in args
        assert {"--pattern=-$A", "--rewrite=-1", "--lang=python", "--update-all",
                "--threads=1"} <= set(args)
        assert args[-2:] == ("--", "a.py")
        assert not any("custom-languages" in a for a in args)

    def test_search_uses_json_stream(self, tmp_path: Path) -> None:
        """Searches read matches from --json=stream and never write."""
        args = self.plan(AstGrepSearch(lang="python", pattern="f($A)"), tmp_path)
        assert "--json=stream" in args and "--update-all" not in args
        assert args[-2:] == ("--", ".")

    def test_rule_passes_rule_file(self, tmp_path: Path) -> None:
        """Rule form: scan --rule=<data file> --update-all."""
        rule = "id: r\nlanguage: python\nrule: {pattern: a}\nfix: b\n"
        args = self.plan(AstGrepRule(rule_yaml=rule), tmp_path)
        assert args[0] == "scan" and f"--rule={DATA}rule.yml" in args

    def test_tests_map_allowlisted_name(self, tmp_path: Path) -> None:
        """A test spec's first word must be an allowlisted name."""
        plan = plan_action(__import__("agentd.records").records.RunTests(), tmp_path,
                           FAST_LIMITS, test_spec=TestSpec(argv=["python", "-m", "pytest"]),
                           allowlist=frozenset({"python"}))
        assert plan.binary == "python" and plan.args == ("-m", "pytest")
        assert plan.ok_codes is None
