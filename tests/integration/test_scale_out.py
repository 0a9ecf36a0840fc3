"""Scale-out: two `aura-agent serve` processes sharing one Redis serve one conversation.

A load balancer may send each request of a conversation to a different instance; with
SESSION_STORE=redis every instance must see the whole history, exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from httpx_sse import aconnect_sse

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import ServerProcess, running_server
from tests.shared_redis import delete_prefix, keys_under, shared_redis_url, unique_prefix

pytestmark = pytest.mark.e2e

INTERNAL_KEY = "scale-out-internal-key-3b9e"
OPENROUTER_KEY = "sk-or-v1-scale-out-secret-77aa"
AUTH = {"x-api-key": INTERNAL_KEY}


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with shared_redis_url(tmp_path) as url:
        yield url


async def _chat(base: str, message: str, session_id: str | None = None) -> tuple[str, str, str]:
    """Send one message; return the reply, the terminal event and the session id."""
    tokens: list[str] = []
    ending = ""
    body = {"message": message, "session_id": session_id}
    async with (
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        aconnect_sse(http, "POST", "/chat", json=body, headers=AUTH) as source,
    ):
        async for event in source.aiter_sse():
            if event.event == "message":
                tokens.append(event.data)
            else:
                ending = f"{event.event}:{event.data}"
        return "".join(tokens), ending, source.response.headers["x-session-id"]


async def test_a_conversation_moves_between_instances(tmp_path: Path, redis_url: str) -> None:
    prefix = unique_prefix()
    async with FakeOpenRouter() as fake, AsyncExitStack() as stack:
        fake.enqueue(Script(tokens=["First", " answer"]), Script(tokens=["Second"]))
        env = {
            "INTERNAL_API_KEY": INTERNAL_KEY,
            "OPENROUTER_API_KEY": OPENROUTER_KEY,
            "OPENROUTER_API_URL": fake.chat_url,
            "SESSION_STORE": "redis",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
        }
        stack.push_async_callback(delete_prefix, redis_url, prefix)
        # Started side by side; a TaskGroup stops the other one if either fails to start.
        async with asyncio.TaskGroup() as group:
            starting = [
                group.create_task(stack.enter_async_context(running_server(tmp_path / n, **env)))
                for n in "ab"
            ]
        servers: list[ServerProcess] = [task.result() for task in starting]
        one, two = servers
        assert one.base_url != two.base_url

        first = await _chat(one.base_url, "hello")
        session_id = first[2]
        second = await _chat(two.base_url, "and again", session_id)

        assert first[:2] == ("First answer", "done:[DONE]")
        assert second == ("Second", "done:[DONE]", session_id)
        assert fake.chat_requests[1].json["messages"] == [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "First answer"},
            {"role": "user", "content": "and again"},
        ]
        assert await keys_under(redis_url, prefix) == [f"{prefix}session:{session_id}".encode()]

        histories = []
        async with httpx.AsyncClient(timeout=10) as http:
            for server in servers:
                response = await http.get(f"{server.base_url}/sessions/{session_id}", headers=AUTH)
                assert response.status_code == 200
                histories.append(response.json())
            deleted = await http.delete(f"{two.base_url}/sessions/{session_id}", headers=AUTH)
            gone = await http.get(f"{one.base_url}/sessions/{session_id}", headers=AUTH)

    assert histories[0] == histories[1]
    messages = histories[0]["messages"]
    assert [{"role": m["role"], "content": m["content"]} for m in messages] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "and again"},
        {"role": "assistant", "content": "Second"},
    ]
    assert ["usage" in m for m in messages] == [False, True, False, True]  # the fake reports it
    assert deleted.status_code == 204
    assert gone.status_code == 404
