"""The fake speaks vLLM's wire format: shapes, errors, metrics, validation, standalone mode."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from agentd.testing.fake_vllm import FakeVLLM

from .helpers import MODEL

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


class TestFakeVLLM:
    def test_sync_use_and_request_recording(self, fake: FakeVLLM) -> None:
        """Usable from sync code; every request is recorded with its parsed body."""
        fake.script("scripted")
        r = httpx.post(f"{fake.base_url}/v1/chat/completions", json=CHAT | {"seed": 3})
        data = r.json()
        assert data["object"] == "chat.completion"
        assert data["choices"][0]["message"]["content"] == "scripted"
        assert fake.generation_bodies() == [CHAT | {"seed": 3}]

    def test_reply_function_sees_the_request(self, fake: FakeVLLM) -> None:
        """reply_with answers from the request body once the script is used up."""
        fake.reply_with(lambda body: body["messages"][-1]["content"].upper())
        r = httpx.post(f"{fake.base_url}/v1/chat/completions", json=CHAT)
        assert r.json()["choices"][0]["message"]["content"] == "HI"

    def test_errors_have_vllms_shape(self, fake: FakeVLLM) -> None:
        """Errors are {"error": {message, type, param, code}}; unknown models are 404."""
        r = httpx.post(f"{fake.base_url}/v1/chat/completions", json=CHAT | {"model": "x"})
        assert r.status_code == 404
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert r.json()["error"]["type"] == "NotFoundError"

    def test_structured_outputs_are_validated_like_vllm(self, fake: FakeVLLM) -> None:
        """Two constraint kinds or a broken regex are 400s, like vLLM; guided_* is ignored."""
        url = f"{fake.base_url}/v1/chat/completions"
        two = CHAT | {"structured_outputs": {"regex": "a", "choice": ["a"]}}
        bad = CHAT | {"structured_outputs": {"regex": "("}}
        assert httpx.post(url, json=two).status_code == 400
        assert httpx.post(url, json=bad).status_code == 400
        assert httpx.post(url, json=CHAT | {"guided_regex": "("}).status_code == 200

    def test_metrics_are_prometheus_text(self, fake: FakeVLLM) -> None:
        """/metrics counts generated tokens in Prometheus exposition format."""
        fake.script("a b c")
        httpx.post(f"{fake.base_url}/v1/chat/completions", json=CHAT)
        r = httpx.get(f"{fake.base_url}/metrics")
        assert r.headers["content-type"].startswith("text/plain")
        assert f'vllm:generation_tokens_total{{model_name="{MODEL}"}} 3.0' in r.text

    def test_misbehaviour_times_then_recovers(self, fake: FakeVLLM) -> None:
        """A fault with times=1 hits one request; the next one is normal."""
        fake.misbehave("status", status=503, times=1)
        url = f"{fake.base_url}/v1/chat/completions"
        assert [httpx.post(url, json=CHAT).status_code for _ in range(2)] == [503, 200]

    def test_refuse_then_accept_on_the_same_port(self, fake: FakeVLLM) -> None:
        """refuse_connections closes the port; accept_connections reopens the same one."""
        port = fake.port
        fake.refuse_connections()
        try:
            httpx.get(f"{fake.base_url}/health")
            raise AssertionError("connection should be refused")
        except httpx.ConnectError:
            pass
        fake.accept_connections()
        assert fake.port == port and httpx.get(f"{fake.base_url}/health").status_code == 200

    def test_runs_standalone(self) -> None:
        """python -m agentd.testing.fake_vllm --port 0 serves until terminated."""
        argv = [sys.executable, "-m", "agentd.testing.fake_vllm", "--port", "0", "--reply", "pong"]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
            try:
                assert proc.stdout is not None
                info = json.loads(proc.stdout.readline())
                r = httpx.post(f"{info['listening']}/v1/completions", json={"prompt": "ping"})
                assert r.json()["choices"][0]["text"] == "pong"
            finally:
                proc.terminate()
