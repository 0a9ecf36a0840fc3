"""Streaming through a real uvicorn server on loopback to a real fake OpenRouter.

These cover what only real sockets show: the upstream request closed when the client leaves,
keep-alive comments while the model thinks, and upstream timeouts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.conftest import AppFactory
from tests.support import AUTH, OPENROUTER_KEY, parse_sse, serve_app, terminal_event, tokens_of


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture(params=["httpx", "asyncio"])
def transport(request: pytest.FixtureRequest) -> str:
    """Every real-socket behaviour must hold with every upstream transport."""
    value: str = request.param
    return value


@pytest.fixture
def build_app(build_app: AppFactory, transport: str) -> AppFactory:
    def factory(**overrides: object) -> Litestar:
        return build_app(upstream_transport=transport, **overrides)

    return factory


def _app(build_app: AppFactory, fake: FakeOpenRouter, **overrides: object) -> Litestar:
    return build_app(openrouter_api_url=fake.chat_url, **overrides)


async def test_a_reply_streams_through_real_sockets(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(tokens=["Hel", "lo", " there\n", "!"], token_delay=0.01))
    async with serve_app(_app(build_app, fake)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/chat", json={"message": "hi"}, headers=AUTH)
    events = parse_sse(response.content)
    assert tokens_of(events) == ["Hel", "lo", " there\n", "!"]
    assert terminal_event(events).event == "done"
    upstream = fake.chat_requests[0]
    assert upstream.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"
    assert upstream.json["stream"] is True
    assert upstream.json["messages"] == [{"role": "user", "content": "hi"}]


async def test_client_disconnect_closes_the_upstream_and_saves_nothing(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(tokens=[f"t{i} " for i in range(200)], token_delay=0.05))
    async with serve_app(_app(build_app, fake)) as base:
        async with (
            httpx.AsyncClient(base_url=base) as http,
            http.stream(
                "POST", "/chat", json={"message": "long", "session_id": "gone"}, headers=AUTH
            ) as response,
        ):
            async for chunk in response.aiter_bytes():
                if b"data: t" in chunk:
                    break
            left_at = time.monotonic()
        await fake.wait_closed(0, timeout=5)
        upstream = fake.chat_requests[0]
        assert upstream.client_closed
        assert upstream.finished_at is not None
        assert upstream.finished_at - left_at < 2.0
        # the aborted turn was not remembered: the next request carries no history
        fake.enqueue(Script(tokens=["ok"]))
        async with httpx.AsyncClient(base_url=base) as http:
            await http.post("/chat", json={"message": "again", "session_id": "gone"}, headers=AUTH)
    assert fake.chat_requests[1].json["messages"] == [{"role": "user", "content": "again"}]


async def test_keepalive_comments_flow_while_waiting_for_the_first_token(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(tokens=["late"], first_token_delay=0.8, comments_while_waiting=0.2))
    app = _app(build_app, fake, keepalive_seconds=0.2)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/chat", json={"message": "hi"}, headers=AUTH)
    body = response.text
    assert body.startswith(": keep-alive\n\n")
    assert body.count(": keep-alive") >= 2
    assert body.index(": keep-alive") < body.index("data: late")
    assert tokens_of(parse_sse(response.content)) == ["late"]


async def test_first_token_timeout_ends_the_stream_with_an_error(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(stall=True))
    app = _app(
        build_app,
        fake,
        upstream_first_token_timeout=0.5,
        keepalive_seconds=0.2,
        route_max_retries=0,
    )
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/chat", json={"message": "hi"}, headers=AUTH)
        await fake.wait_closed(0, timeout=5)
    error = terminal_event(parse_sse(response.content))
    assert error.event == "error"
    assert "did not start answering" in error.data
    assert fake.chat_requests[0].client_closed


async def test_a_stream_cut_mid_reply_is_an_error_not_a_reply(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(tokens=["half", " a"], drop_after_tokens=True))
    async with serve_app(_app(build_app, fake)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/chat", json={"message": "x", "session_id": "cut"}, headers=AUTH
        )
        fake.enqueue(Script(tokens=["fine"]))
        await http.post("/chat", json={"message": "y", "session_id": "cut"}, headers=AUTH)
    events = parse_sse(response.content)
    assert tokens_of(events) == ["half", " a"]
    assert terminal_event(events).event == "error"
    assert fake.chat_requests[1].json["messages"] == [{"role": "user", "content": "y"}]


async def test_upstream_idle_timeout_mid_stream(
    build_app: AppFactory, fake: FakeOpenRouter
) -> None:
    fake.enqueue(Script(tokens=["a", "b"], token_delay=1.5))
    app = _app(build_app, fake, upstream_idle_timeout=0.4)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/chat", json={"message": "x"}, headers=AUTH)
    error = terminal_event(parse_sse(response.content))
    assert error.event == "error"
    assert "0.4" in error.data
