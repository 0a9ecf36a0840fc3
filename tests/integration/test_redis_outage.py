"""A Redis outage seen through the app served by a real uvicorn: clean 503s, then recovery.

Each test owns a redis-server on a free loopback port, kills it (SIGKILL, like a crash) and
starts it again on the same port, while one app instance keeps running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from aura_agent.adapters.session_store.redis import UNAVAILABLE_MESSAGE
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, StreamEnd, TextDelta
from tests.conftest import AppFactory
from tests.redis_helpers import LocalRedisServer, redis_server_binary
from tests.support import AUTH, ScriptedModel, parse_sse, serve_app, terminal_event, tokens_of

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed (CI provides it)"
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[LocalRedisServer]:
    server = LocalRedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class GatedModel(ScriptedModel):
    """Streams its first token, then waits for `release`: the test acts while a reply is open."""

    def __init__(self, tokens: Sequence[str]) -> None:
        super().__init__(tokens)
        self.streaming = asyncio.Event()
        self.release = asyncio.Event()

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        self.calls.append((list(messages), options))
        yield TextDelta(self.tokens[0])
        self.streaming.set()
        await self.release.wait()
        for token in self.tokens[1:]:
            yield TextDelta(token)
        yield StreamEnd()


async def _chat(http: httpx.AsyncClient, message: str, session_id: str) -> httpx.Response:
    return await http.post(
        "/chat", json={"message": message, "session_id": session_id}, headers=AUTH
    )


def _assert_completed(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    ending = terminal_event(parse_sse(response.content))
    assert (ending.event, ending.data) == ("done", "[DONE]")


async def test_outage_is_a_clean_503_and_the_app_recovers_without_restart(
    build_app: AppFactory, redis_server: LocalRedisServer
) -> None:
    model = ScriptedModel(["Hi", "!"])
    app = build_app(
        chat_model=model,
        session_store="redis",
        redis_url=redis_server.url,
        redis_key_prefix="outage:",
        redis_socket_timeout=1,
    )
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        _assert_completed(await _chat(http, "before", "s-1"))
        assert (await http.get("/ready")).status_code == 200

        await asyncio.to_thread(redis_server.stop)

        refused = await _chat(http, "during", "s-1")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "2"
        assert "x-session-id" not in refused.headers, "no stream may have started"
        problem = refused.json()
        assert problem["status"] == 503
        assert problem["detail"] == UNAVAILABLE_MESSAGE
        assert problem["request_id"] == refused.headers["x-request-id"]
        assert len(model.calls) == 1, "the model must not be asked while the history is unknown"

        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "model": "ok",
            "session_store": f"failed: {UNAVAILABLE_MESSAGE}",
        }
        history = await http.get("/sessions/s-1", headers=AUTH)
        assert history.status_code == 503
        assert history.headers["retry-after"] == "2"
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "healthy"

        await asyncio.to_thread(redis_server.start)  # same port, empty dataset

        _assert_completed(await _chat(http, "after", "s-1"))
        assert (await http.get("/ready")).status_code == 200
        restored = await http.get("/sessions/s-1", headers=AUTH)
        assert [m["content"] for m in restored.json()["messages"]] == ["after", "Hi!"]


async def test_a_turn_that_cannot_be_saved_ends_the_stream_with_an_error(
    build_app: AppFactory, redis_server: LocalRedisServer
) -> None:
    model = GatedModel(["Partly", " streamed"])
    app = build_app(
        chat_model=model,
        session_store="redis",
        redis_url=redis_server.url,
        redis_key_prefix="unsaved:",
        redis_socket_timeout=1,
    )
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        events: list[ServerSentEvent] = []
        body = {"message": "hello", "session_id": "s-1"}
        async with aconnect_sse(http, "POST", "/chat", json=body, headers=AUTH) as source:
            assert source.response.status_code == 200  # the history loaded: the stream began
            async for event in source.aiter_sse():
                events.append(event)
                if event.data == "Partly":
                    await asyncio.wait_for(model.streaming.wait(), 5)
                    await asyncio.to_thread(redis_server.stop)
                    model.release.set()

        assert tokens_of(events) == ["Partly", " streamed"]
        ending = terminal_event(events)
        assert ending.event == "error"
        assert "not saved" in ending.data
        assert [event.event for event in events].count("done") == 0
        assert (await http.get("/health")).status_code == 200
