"""systemd environment files rendered from the actors config."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.config import ActorConfig, Settings
from agentd.errors import ConfigError
from agentd.policies.units import render_actor_env, write_actor_envs


class TestUnits:
    def test_renders_every_variable_the_unit_needs(self) -> None:
        """Each VLLM_* variable and CUDA_VISIBLE_DEVICES comes from the actor's fields."""
        a = ActorConfig(
            name="actor2",
            port=8102,
            gpu_ids=[2, 3],
            tensor_parallel_size=2,
            max_concurrent_requests=32,
            quantization="awq",
        )
        lines = dict(line.split("=", 1) for line in render_actor_env(a).splitlines() if "=" in line)
        assert lines == {
            "VLLM_MODEL": '"Qwen/Qwen3-14B-AWQ"',
            "VLLM_HOST": '"127.0.0.1"',
            "VLLM_PORT": '"8102"',
            "CUDA_VISIBLE_DEVICES": '"2,3"',
            "VLLM_QUANTIZATION": '"awq"',
            "VLLM_EXTRA_ARGS": '"--quantization awq"',
            "VLLM_TP_SIZE": '"2"',
            "VLLM_SERVED_NAME": '"qwen3-14b-awq"',
            "VLLM_MAX_MODEL_LEN": '"8192"',
            "VLLM_MAX_NUM_SEQS": '"32"',
            "HF_HOME": '"/var/lib/vllm/huggingface"',
        }

    def test_no_quantization_is_empty(self) -> None:
        """quantization: null renders as an empty value, not the string None."""
        a = ActorConfig(name="a", port=1, quantization=None)
        assert 'VLLM_QUANTIZATION=""' in render_actor_env(a)
        assert 'VLLM_EXTRA_ARGS=""' in render_actor_env(a)  # no `--quantization ""` flag

    def test_refuses_values_systemd_would_mangle(self) -> None:
        """A $ or a quote in a value is a ConfigError naming the actor and key."""
        a = ActorConfig(name="a", port=1, model="evil$HOME")
        with pytest.raises(ConfigError, match="a: VLLM_MODEL"):
            render_actor_env(a)

    def test_writes_one_file_per_configured_actor(self, settings: Settings, tmp_path: Path) -> None:
        """The three actors of configs/vllm_actors.yaml become three NAME.env files."""
        paths = write_actor_envs(settings.actors.actors, tmp_path / "env")
        assert [p.name for p in paths] == ["actor0.env", "actor1.env", "actor2.env"]
        assert 'VLLM_PORT="8101"' in paths[1].read_text()
        assert not list((tmp_path / "env").glob("*.tmp"))

    def test_unit_template_uses_every_rendered_variable(self, project_root: Path) -> None:
        """systemd/vllm-actor@.service reads the variables this module writes."""
        unit = (project_root / "systemd" / "vllm-actor@.service").read_text()
        a = ActorConfig(name="a", port=1)
        for line in render_actor_env(a).splitlines()[1:]:
            key = line.split("=", 1)[0]
            # CUDA_VISIBLE_DEVICES is read by the CUDA runtime, HF_HOME by vLLM's hub client;
            # VLLM_QUANTIZATION documents what VLLM_EXTRA_ARGS passes.
            if key not in ("CUDA_VISIBLE_DEVICES", "VLLM_QUANTIZATION", "HF_HOME"):
                assert f"${key}" in unit or f"${{{key}}}" in unit, key

    def test_module_cli_writes_files(self, settings: Settings, tmp_path: Path) -> None:
        """python -m agentd.policies.units --out DIR writes the env files."""
        from agentd.policies.units import main

        assert main(["--out", str(tmp_path / "e"), "--config", str(settings.config_path)]) == 0
        assert len(list((tmp_path / "e").glob("*.env"))) == 3

    def test_flags_only_when_set(self) -> None:
        """The default actor passes no --quantization (vLLM picks awq_marlin for AWQ);
        reasoning parser and batch budget appear when configured."""
        assert 'VLLM_EXTRA_ARGS=""' in render_actor_env(ActorConfig(name="a", port=1))
        a = ActorConfig(name="a", port=1, reasoning_parser="qwen3", max_num_batched_tokens=8192)
        assert ('VLLM_EXTRA_ARGS="--reasoning-parser qwen3 --max-num-batched-tokens 8192"'
                in render_actor_env(a))

    def test_configured_actors_force_no_awq_kernel(self, settings: Settings) -> None:
        """configs/vllm_actors.yaml leaves the kernel choice to vLLM."""
        assert all(a.quantization is None for a in settings.actors.actors)
