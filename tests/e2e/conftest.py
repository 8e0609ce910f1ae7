"""The e2e tier: a real vLLM server (CPU build) serving SmolLM2-135M as ``qwen3-14b-awq``.

The session fixture runs ``scripts/setup_vllm_cpu.sh setup`` (a no-op once cached), starts the
server on a free port and waits for ``/v1/models``. ``AGENTD_VLLM_URL`` reuses a running one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.testing.vllm_cpu import VLLMServer


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    log = Path(tmp_path_factory.mktemp("vllm")) / "server.log"
    server = VLLMServer.start(log_path=log)
    try:
        yield server
    finally:
        server.stop()
