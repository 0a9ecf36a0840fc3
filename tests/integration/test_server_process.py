"""End to end: the `aura-agent serve` process the README starts, on loopback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import CLI, environment, free_port, running_server

pytestmark = pytest.mark.e2e

INTERNAL_KEY = "e2e-internal-key-7a41c0"
OPENROUTER_KEY = "sk-or-v1-e2e-secret-0f9e8d7c6b5a"


async def _chat(base: str, key: str, body: dict[str, object]) -> tuple[list[str], str, str]:
    tokens: list[str] = []
    ending = ""
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        aconnect_sse(http, "POST", "/chat", json=body, headers={"x-api-key": key}) as source,
    ):
        async for event in source.aiter_sse():
            if event.event == "message":
                tokens.append(event.data)
            else:
                ending = f"{event.event}:{event.data}"
        session = source.response.headers["x-session-id"]
    return tokens, ending, session


async def test_serve_relays_openrouter_and_remembers_turns(tmp_path: Path) -> None:
    async with FakeOpenRouter() as fake:
        fake.enqueue(Script(tokens=["Hi", " from", " the fake\n", "model"]), Script(tokens=["2"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=INTERNAL_KEY,
            OPENROUTER_API_KEY=OPENROUTER_KEY,
            OPENROUTER_API_URL=fake.chat_url,
        ) as server:
            base = server.base_url
            tokens, ending, session = await _chat(base, INTERNAL_KEY, {"message": "hello"})
            assert tokens == ["Hi", " from", " the fake\n", "model"]
            assert ending == "done:[DONE]"
            await _chat(base, INTERNAL_KEY, {"message": "again", "session_id": session})
            async with httpx.AsyncClient(base_url=base) as http:
                denied = await http.post("/chat", json={"message": "x"})
                ready = await http.get("/ready")
            server.stop()
            logs = server.log_path.read_text()
    assert denied.status_code == 401
    assert ready.status_code == 200
    assert fake.chat_requests[1].json["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi from the fake\nmodel"},
        {"role": "user", "content": "again"},
    ]
    assert '"provider": "openrouter"' in logs
    assert '"event": "request"' in logs
    assert OPENROUTER_KEY not in logs
    assert INTERNAL_KEY not in logs


async def test_serve_without_configuration_runs_the_demo_with_a_printed_key(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path, DEMO_TOKEN_DELAY_MS="0") as server:
        base = server.base_url
        output = server.log_path.read_text()
        match = re.search(r"-H 'x-api-key: ([A-Za-z0-9_-]+)'", output)
        assert match, output
        key = match.group(1)
        assert output.count(key) == 2, "the key is printed once, in the banner and its curl line"
        tokens, ending, _ = await _chat(base, key, {"message": "hello demo"})
        async with httpx.AsyncClient(base_url=base) as http:
            health = (await http.get("/health")).json()
        server.stop()
        logs = server.log_path.read_text()
    reply = "".join(tokens)
    assert reply.startswith("[offline demo]")
    assert "OPENROUTER_API_KEY" in reply
    assert "hello demo" in reply
    assert ending == "done:[DONE]"
    assert health["model"] == "aura/offline-demo"
    assert '"provider": "demo"' in logs
    assert "demo_model_active" in logs
    assert logs.count(key) == 2, "the generated key must not reach any log line"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OPENROUTER_API_KEY": "x"}, "INTERNAL_API_KEY"),
        ({"INTERNAL_API_KEY": "x"}, "OPENROUTER_API_KEY"),
    ],
)
def test_production_refuses_to_start_without_keys(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = subprocess.run(
        [CLI, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=environment(AURA_ENV="production", **env),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert variable in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
