"""Token usage: the opt-in `/chat` usage event, the stored turn (both stores) as `GET /sessions`
shows it, and the canonical log line."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import structlog
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock
from redis.asyncio import Redis

from aura_agent.domain.models import Usage
from aura_agent.testing.openrouter_mock import OpenRouterMock, openrouter_usage
from tests.conftest import AppFactory
from tests.shared_redis import delete_prefix, shared_redis_url, unique_prefix
from tests.support import AUTH, OPENROUTER_URL, ScriptedModel, parse_sse

USAGE = Usage(prompt_tokens=12, completion_tokens=2, total_tokens=14, reasoning_tokens=1)


async def test_include_usage_sends_a_usage_event_right_before_done(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(["Hi", "!"], usage=USAGE))
    async with AsyncTestClient(app=app) as api:
        response = await api.post(
            "/chat", json={"message": "hi", "include_usage": True}, headers=AUTH
        )

    events = parse_sse(response.content)
    assert [event.event for event in events] == ["message", "message", "usage", "done"]
    assert json.loads(events[2].data) == {
        "prompt_tokens": 12,
        "completion_tokens": 2,
        "total_tokens": 14,
        "reasoning_tokens": 1,
    }
    assert b"event: usage\ndata: {" in response.content  # one JSON line


@pytest.mark.parametrize("flag", [None, False])
async def test_without_the_flag_the_stream_is_unchanged(
    build_app: AppFactory, flag: bool | None
) -> None:
    app = build_app(chat_model=ScriptedModel(["Hi", "!"], usage=USAGE))
    body: dict[str, object] = {"message": "hi"}
    if flag is not None:
        body["include_usage"] = flag
    async with AsyncTestClient(app=app) as api:
        response = await api.post("/chat", json=body, headers=AUTH)

    assert response.content == b"data: Hi\n\ndata: !\n\nevent: done\ndata: [DONE]\n\n"


async def test_no_usage_event_when_the_provider_reported_none(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel(["Hi"]))) as api:
        response = await api.post(
            "/chat", json={"message": "hi", "include_usage": True}, headers=AUTH
        )

    assert [event.event for event in parse_sse(response.content)] == ["message", "done"]


async def test_a_non_boolean_flag_is_a_400_naming_it(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.post(
            "/chat", json={"message": "hi", "include_usage": "yes"}, headers=AUTH
        )

    assert response.status_code == 400
    assert response.json()["field"] == "include_usage"


async def test_usage_from_the_wire_reaches_the_event_and_the_log_line(
    build_app: AppFactory, httpx_mock: HTTPXMock
) -> None:
    openrouter = OpenRouterMock(httpx_mock, url=OPENROUTER_URL)
    openrouter.add_stream(
        ["a", "b"], usage=openrouter_usage(30, 2, reasoning_tokens=5, cached_tokens=20)
    )
    app = build_app()
    with structlog.testing.capture_logs() as logs:
        async with AsyncTestClient(app=app) as api:
            response = await api.post(
                "/chat", json={"message": "hi", "include_usage": True}, headers=AUTH
            )

    usage = next(event for event in parse_sse(response.content) if event.event == "usage")
    assert json.loads(usage.data) == {
        "prompt_tokens": 30,
        "completion_tokens": 2,
        "total_tokens": 32,
        "reasoning_tokens": 5,
        "cached_tokens": 20,
    }
    line = next(entry for entry in logs if entry["event"] == "request")
    assert (line["prompt_tokens"], line["completion_tokens"]) == (30, 2)
    assert (line["reasoning_tokens"], line["cached_tokens"]) == (5, 20)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="aura-usage-") as workdir,
        shared_redis_url(Path(workdir)) as url,
    ):
        yield url


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_sessions_show_the_usage_of_each_reply(
    build_app: AppFactory, redis_url: str, store: str
) -> None:
    prefix = unique_prefix()
    overrides: dict[str, object] = {}
    if store == "redis":
        overrides = {"session_store": "redis", "redis_url": redis_url, "redis_key_prefix": prefix}
    app = build_app(chat_model=ScriptedModel(["Hi"], usage=USAGE), **overrides)
    try:
        async with AsyncTestClient(app=app) as api:
            await api.post("/chat", json={"message": "one", "session_id": "u1"}, headers=AUTH)
            response = await api.get("/sessions/u1", headers=AUTH)
    finally:
        if store == "redis":
            await delete_prefix(redis_url, prefix)

    assert response.json()["messages"] == [
        {"role": "user", "content": "one"},
        {
            "role": "assistant",
            "content": "Hi",
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 2,
                "total_tokens": 14,
                "reasoning_tokens": 1,
            },
        },
    ]


async def test_histories_stored_before_usage_existed_still_load(
    build_app: AppFactory, redis_url: str
) -> None:
    """Entries written by the previous version (no `usage` key) decode, with no usage shown."""
    prefix = unique_prefix()
    old = [msgspec.msgpack.encode({"role": r, "content": c}) for r, c in OLD_TURN]
    client = Redis.from_url(redis_url)
    try:
        await client.rpush(f"{prefix}session:legacy", *old)
        app = build_app(
            chat_model=ScriptedModel(["new"], usage=USAGE),
            session_store="redis",
            redis_url=redis_url,
            redis_key_prefix=prefix,
        )
        async with AsyncTestClient(app=app) as api:
            await api.post("/chat", json={"message": "again", "session_id": "legacy"}, headers=AUTH)
            response = await api.get("/sessions/legacy", headers=AUTH)
        stored = await client.lrange(f"{prefix}session:legacy", 0, -1)
    finally:
        await client.aclose()
        await delete_prefix(redis_url, prefix)

    messages = response.json()["messages"]
    assert [m["content"] for m in messages] == ["old question", "old answer", "again", "new"]
    assert ["usage" in m for m in messages] == [False, False, False, True]
    assert stored[:2] == old
    assert stored[2] == msgspec.msgpack.encode({"role": "user", "content": "again"})  # same bytes


OLD_TURN = (("user", "old question"), ("assistant", "old answer"))
