"""Per-key limits: requests per minute and concurrent streams, answered with 429 + Retry-After.

With the memory store the limits hold per process; with Redis they hold across every instance
sharing it, which two app instances on one Redis show here.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from aura_agent.adapters.rate_limit.memory import MemoryRateLimiter
from aura_agent.adapters.rate_limit.redis import RedisRateLimiter
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, StreamEnd, TextDelta
from tests.conftest import AppFactory
from tests.shared_redis import delete_prefix, keys_under, shared_redis_url, unique_prefix
from tests.support import parse_sse, serve_app, terminal_event

ALPHA = {"x-api-key": "alpha-key-0c4e2f8a19"}
BETA = {"x-api-key": "beta-key-7d3b5a6c28"}
TENANT_KEYS = f"alpha:{ALPHA['x-api-key']},beta:{BETA['x-api-key']}"
STORES = ["memory", "redis"]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="aura-limits-") as workdir,
        shared_redis_url(Path(workdir)) as url,
    ):
        yield url


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    value = unique_prefix()
    yield value
    await delete_prefix(redis_url, value)


class GatedModel:
    """Streams "first", then waits for `release` before " last": a stream held open on demand.

    A message "quick" is answered at once.
    """

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.closed = 0

    @property
    def provider(self) -> str:
        return "gated"

    @property
    def default_model(self) -> str:
        return "gated-model"

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        try:
            yield TextDelta("first")
            if messages[-1].content != "quick":
                await self.release.wait()
            yield TextDelta(" last")
            yield StreamEnd(finish_reason="stop")
        finally:
            self.closed += 1

    async def check(self) -> None:
        return None


def _settings(store: str, redis_url: str, prefix: str, **limits: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {"internal_api_keys": TENANT_KEYS, **limits}
    if store == "redis":
        overrides |= {"session_store": "redis", "redis_url": redis_url, "redis_key_prefix": prefix}
    return overrides


def _chat(message: str = "hello", session_id: str | None = None) -> dict[str, Any]:
    return {"message": message, "session_id": session_id}


def _assert_limited(response: httpx.Response, status: int, detail: str) -> int:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert detail in problem["detail"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


@asynccontextmanager
async def _held_stream(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[AsyncIterator[bytes]]:
    """A /chat stream that has sent its first token; yields the rest of its body."""
    async with http.stream("POST", "/chat", json=_chat(), headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        chunks = response.aiter_raw()
        first = await anext(chunks)
        while b"first" not in first:
            first += await anext(chunks)
        yield chunks


async def _read_rest(chunks: AsyncIterator[bytes]) -> str:
    body = b"".join([chunk async for chunk in chunks])
    return terminal_event(parse_sse(body)).event


async def _status_of_new_stream(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await http.post("/chat", json=_chat("quick"), headers=headers)
    if response.status_code == 200:
        assert terminal_event(parse_sse(response.content)).event == "done"
    return response.status_code


# -- requests per minute ----------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
async def test_requests_per_minute_are_limited_per_key(
    store: str, build_app: AppFactory, redis_url: str, prefix: str
) -> None:
    app = build_app(
        chat_model=GatedModel(), **_settings(store, redis_url, prefix, rate_limit_per_minute=3)
    )
    async with AsyncTestClient(app=app) as client:
        allowed = [(await client.get("/sessions/x", headers=ALPHA)).status_code for _ in range(3)]
        over = await client.get("/sessions/x", headers=ALPHA)
        chat_over = await client.post("/chat", json=_chat("quick"), headers=ALPHA)
        other_tenant = await client.post("/chat", json=_chat("quick"), headers=BETA)
        health = await client.get("/health")

    assert allowed == [404, 404, 404]
    # GCRA: a burst of 3, then one more every 20 s.
    assert 1 <= _assert_limited(over, 429, "3 requests per minute") <= 20
    _assert_limited(chat_over, 429, "3 requests per minute")
    assert other_tenant.status_code == 200
    assert health.status_code == 200


async def test_the_rate_refills_one_request_at_a_time() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(requests_per_minute=6, max_streams=0, clock=lambda: now[0])

    assert [await limiter.hit("a") for _ in range(6)] == [0.0] * 6
    assert await limiter.hit("a") == pytest.approx(10.0)
    now[0] += 9.9
    assert await limiter.hit("a") == pytest.approx(0.1)
    now[0] += 0.1
    assert await limiter.hit("a") == 0.0, "one request every 60/6 s once the burst is spent"
    assert await limiter.hit("a") > 0
    assert await limiter.hit("b") == 0.0


# -- concurrent streams per key ---------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
async def test_concurrent_streams_are_limited_per_key(
    store: str, build_app: AppFactory, redis_url: str, prefix: str
) -> None:
    model = GatedModel()
    app = build_app(chat_model=model, **_settings(store, redis_url, prefix, max_streams_per_key=1))
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with _held_stream(http, ALPHA) as rest:
            second = await http.post("/chat", json=_chat("quick"), headers=ALPHA)
            other_tenant = await _status_of_new_stream(http, BETA)
            model.release.set()
            held_ending = await _read_rest(rest)
        after = await _status_of_new_stream(http, ALPHA)

    _assert_limited(second, 429, "maximum of 1 streams open")
    assert other_tenant == 200
    assert held_ending == "done"
    assert after == 200, "the slot is given back when the stream ends"
    if store == "redis":
        assert not [key for key in await keys_under(redis_url, prefix) if b"streams:" in key]


@pytest.mark.parametrize("store", STORES)
async def test_a_client_that_leaves_gives_its_stream_slot_back(
    store: str, build_app: AppFactory, redis_url: str, prefix: str
) -> None:
    model = GatedModel()
    app = build_app(chat_model=model, **_settings(store, redis_url, prefix, max_streams_per_key=1))
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as leaving,
            _held_stream(leaving, ALPHA),
        ):
            refused = await http.post("/chat", json=_chat("quick"), headers=ALPHA)
        statuses = []
        for _ in range(100):  # the server notices the hang-up within a few event-loop turns
            statuses.append(await _status_of_new_stream(http, ALPHA))
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.05)

    _assert_limited(refused, 429, "maximum of 1 streams open")
    assert statuses[-1] == 200, statuses
    assert model.closed >= 1, "the upstream stream of the client that left was closed"


# -- several instances on one Redis -----------------------------------------------------------


async def test_two_instances_sharing_redis_enforce_one_limit(
    build_app: AppFactory, redis_url: str, prefix: str
) -> None:
    model = GatedModel()
    settings = _settings("redis", redis_url, prefix, rate_limit_per_minute=4, max_streams_per_key=1)
    async with AsyncExitStack() as stack:
        bases = [
            await stack.enter_async_context(serve_app(build_app(chat_model=model, **settings)))
            for _ in range(2)
        ]
        one, two = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
            for base in bases
        ]
        async with _held_stream(one, ALPHA) as rest:  # request 1, on instance one
            stream_elsewhere = await two.post("/chat", json=_chat("quick"), headers=ALPHA)  # 2
            model.release.set()
            await _read_rest(rest)
        third = await two.get("/sessions/x", headers=ALPHA)
        fourth = await one.get("/sessions/x", headers=ALPHA)
        fifth = await two.get("/sessions/x", headers=ALPHA)
        beta = await one.get("/sessions/x", headers=BETA)

    _assert_limited(stream_elsewhere, 429, "maximum of 1 streams open")
    assert (third.status_code, fourth.status_code) == (404, 404)
    _assert_limited(fifth, 429, "4 requests per minute")
    assert beta.status_code == 404


async def test_a_stream_lease_left_by_a_dead_instance_runs_out(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        limiter = RedisRateLimiter(
            client, key_prefix=prefix, requests_per_minute=0, max_streams=1, lease_seconds=0.3
        )
        assert await limiter.acquire_stream("alpha", "crashed-instance-stream")
        assert not await limiter.acquire_stream("alpha", "next")
        await limiter.release_stream("alpha", "unknown-id")  # harmless
        acquired = False
        for _ in range(60):  # the lease runs out 0.3 s after it was taken
            await asyncio.sleep(0.05)
            if acquired := await limiter.acquire_stream("alpha", "next"):
                break
        assert acquired
        assert await client.zcard(limiter.streams_key("alpha")) == 1
        assert 0 < await client.pttl(limiter.streams_key("alpha")) <= 300
        await limiter.release_stream("alpha", "next")
        assert await client.exists(limiter.streams_key("alpha")) == 0
    finally:
        await client.aclose()
