"""Switching provider is a change of environment only: the real server against each vendor's
wire format on loopback (OpenRouter, an OpenAI-compatible endpoint, Anthropic), plus a
cross-vendor fallback defined in a models file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from aura_agent.testing.fake_anthropic import FakeAnthropic
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import running_server

pytestmark = pytest.mark.e2e

KEY = "switch-internal-key-19af"


async def _chat(base: str, message: str) -> tuple[str, str]:
    text, ending = "", ""
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        aconnect_sse(
            http, "POST", "/chat", json={"message": message}, headers={"x-api-key": KEY}
        ) as source,
    ):
        async for event in source.aiter_sse():
            if event.event == "message":
                text += event.data
            else:
                ending = event.event
    return text, ending


async def test_openrouter_by_environment(tmp_path: Path) -> None:
    async with FakeOpenRouter() as fake:
        fake.enqueue(Script(tokens=["via ", "openrouter"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            OPENROUTER_API_KEY="sk-or-switch-1",
            OPENROUTER_API_URL=fake.chat_url,
        ) as server:
            assert await _chat(server.base_url, "hi") == ("via openrouter", "done")
    sent = fake.chat_requests[0]
    assert sent.headers["authorization"] == "Bearer sk-or-switch-1"
    assert sent.json["model"] == "deepseek/deepseek-chat"


async def test_openai_compatible_by_environment(tmp_path: Path) -> None:
    async with FakeOpenRouter(prefix="/v1") as fake:
        fake.enqueue(Script(tokens=["via ", "openai"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            LLM_PROVIDER="openai",
            OPENAI_API_KEY="sk-openai-switch-2",
            OPENAI_BASE_URL=f"http://127.0.0.1:{fake.port}/v1",
            MODEL_NAME="gpt-4o-mini",
        ) as server:
            assert await _chat(server.base_url, "hi") == ("via openai", "done")
    sent = fake.chat_requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-openai-switch-2"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["stream_options"] == {"include_usage": True}


async def test_a_named_openai_compatible_vendor_is_one_row(tmp_path: Path) -> None:
    """DeepSeek is a row of the provider table: its key and URL variables, its default model
    and the label of its errors come from there, with no code of its own."""
    async with FakeOpenRouter(prefix="") as fake:
        fake.enqueue(Script(tokens=["via ", "deepseek"]))
        fake.enqueue(Script(status=401, error_message="bad key"))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            DEEPSEEK_API_KEY="sk-deepseek-switch-4",
            DEEPSEEK_BASE_URL=fake.base_url,
        ) as server:
            assert await _chat(server.base_url, "hi") == ("via deepseek", "done")
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                refused = await http.post(
                    "/chat", json={"message": "again"}, headers={"x-api-key": KEY}
                )
    sent = fake.chat_requests[0]
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-deepseek-switch-4"
    assert sent.json["model"] == "deepseek-chat"
    assert "event: error\ndata: DeepSeek rejected the API key" in refused.text


async def test_a_local_server_without_a_key(tmp_path: Path) -> None:
    async with FakeOpenRouter(prefix="/v1") as fake:
        fake.enqueue(Script(tokens=["local"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            LLM_PROVIDER="openai",
            OPENAI_BASE_URL=f"http://127.0.0.1:{fake.port}/v1",
            MODEL_NAME="llama3.2",
        ) as server:
            assert await _chat(server.base_url, "hi") == ("local", "done")
    assert "authorization" not in fake.chat_requests[0].headers


async def test_anthropic_by_environment(tmp_path: Path) -> None:
    async with FakeAnthropic() as fake:
        fake.enqueue(Script(tokens=["via ", "anthropic"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            LLM_PROVIDER="anthropic",
            ANTHROPIC_API_KEY="sk-ant-switch-3",
            ANTHROPIC_BASE_URL=fake.base_url,
            SYSTEM_PROMPT="Answer briefly.",
        ) as server:
            assert await _chat(server.base_url, "hi") == ("via anthropic", "done")
    sent = fake.chat_requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-switch-3"
    assert sent.headers["anthropic-version"]
    assert sent.json["system"] == "Answer briefly."
    assert sent.json["messages"] == [{"role": "user", "content": "hi"}]


async def test_fallback_across_vendors_from_a_models_file(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    async with FakeAnthropic() as anthropic, FakeOpenRouter(prefix="/v1") as openai:
        models.write_text(
            f"""
default = "claude"

[routes.claude]
provider = "anthropic"
model = "claude-3-5-haiku-latest"
base_url = "{anthropic.base_url}"
fallbacks = ["gpt"]
max_retries = 0

[routes.gpt]
provider = "openai"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:{openai.port}/v1"
""",
            encoding="utf-8",
        )
        anthropic.enqueue(Script(status=529, error_message="Overloaded"))
        openai.enqueue(Script(tokens=["rescued"]))
        async with running_server(
            tmp_path,
            INTERNAL_API_KEY=KEY,
            MODELS_FILE=str(models),
            ANTHROPIC_API_KEY="sk-ant-fallback",
            OPENAI_API_KEY="sk-openai-fallback",
        ) as server:
            assert await _chat(server.base_url, "hi") == ("rescued", "done")
            server.stop()
            logs = server.log_path.read_text()
    assert len(anthropic.chat_requests) == 1
    assert '"route": "gpt"' in logs
    assert '"attempts": 2' in logs
    assert "sk-ant-fallback" not in logs
