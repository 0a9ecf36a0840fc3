"""SIGTERM on the real `aura-agent serve` process: nothing finished is lost, nothing is half-saved.

A short stream in flight finishes with `done` and its turn is saved; new connections are
refused; a slow stream runs until SHUTDOWN_GRACE_SECONDS, then ends with the shutdown error
event and saves nothing; the process exits 0 soon after. Sessions live in Redis, so what the
process saved can be checked after it has gone.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from redis.asyncio import Redis

from aura_agent.adapters.session_store.redis import RedisSessionStore
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import ServerProcess, running_server
from tests.shared_redis import delete_prefix, shared_redis_url, unique_prefix

pytestmark = pytest.mark.e2e

INTERNAL_KEY = "shutdown-internal-key-6c2e"
AUTH = {"x-api-key": INTERNAL_KEY}
GRACE_SECONDS = 3.0
SHUTDOWN_ERROR = "the server is shutting down; please retry"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with shared_redis_url(tmp_path) as url:
        yield url


async def _stream(base: str, session_id: str, started: asyncio.Event) -> list[ServerSentEvent]:
    """Every event of one /chat reply; `started` is set at its first token."""
    events: list[ServerSentEvent] = []
    body = {"message": f"hello from {session_id}", "session_id": session_id}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as http,
        aconnect_sse(http, "POST", "/chat", json=body, headers=AUTH) as source,
    ):
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            events.append(event)
            if event.event == "message":
                started.set()
    return events


async def _refuses_connections(base: str) -> bool:
    """Whether a new connection is refused within a few seconds (the listener closes within a
    tick of the server's loop after SIGTERM)."""
    for _ in range(100):
        try:
            async with httpx.AsyncClient(base_url=base, timeout=2) as http:
                await http.get("/health")
        except httpx.ConnectError:
            return True
        await asyncio.sleep(0.05)
    return False


async def _history(redis_url: str, prefix: str, session_id: str) -> list[tuple[str, str]]:
    client = Redis.from_url(redis_url)
    try:
        store = RedisSessionStore(client, key_prefix=prefix, max_messages=100, ttl_seconds=60)
        return [(m.role.value, m.content) for m in await store.load(session_id)]
    finally:
        await client.aclose()


@dataclass
class Shutdown:
    """What the clients saw when the server was stopped with two streams in flight."""

    short: list[ServerSentEvent]
    slow: list[ServerSentEvent]
    slow_ended: float
    """Seconds from SIGTERM to the end of the slow stream."""
    exited: float
    """Seconds from SIGTERM to the end of the process."""
    refused: bool | None
    """Whether a new connection was refused meanwhile (None: not checked)."""


async def _sigterm_with_two_streams(server: ServerProcess, *, check_refusal: bool) -> Shutdown:
    """Start a slow and a short stream, SIGTERM the server once both are flowing."""
    slow_started, short_started = asyncio.Event(), asyncio.Event()
    slow = asyncio.create_task(_stream(server.base_url, "slow-1", slow_started))
    await asyncio.wait_for(slow_started.wait(), 10)
    short = asyncio.create_task(_stream(server.base_url, "short-1", short_started))
    await asyncio.wait_for(short_started.wait(), 10)

    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    refused = await _refuses_connections(server.base_url) if check_refusal else None
    short_events = await asyncio.wait_for(short, 15)
    slow_events = await asyncio.wait_for(slow, GRACE_SECONDS + 15)
    slow_ended = time.monotonic() - sent
    await asyncio.to_thread(server.process.wait, GRACE_SECONDS + 15)
    return Shutdown(short_events, slow_events, slow_ended, time.monotonic() - sent, refused)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_drains_streams_and_loses_no_finished_turn(
    tmp_path: Path, redis_url: str, workers: str
) -> None:
    prefix = unique_prefix()
    async with FakeOpenRouter() as fake:
        fake.enqueue(
            Script(tokens=[f"w{n} " for n in range(300)], token_delay=0.1),  # 30 s: too slow
            Script(tokens=["short", " reply", " done"], token_delay=0.3),  # ~0.6 s more
        )
        try:
            async with running_server(
                tmp_path,
                INTERNAL_API_KEY=INTERNAL_KEY,
                OPENROUTER_API_KEY="sk-or-v1-shutdown-test",
                OPENROUTER_API_URL=fake.chat_url,
                SESSION_STORE="redis",
                REDIS_URL=redis_url,
                REDIS_KEY_PREFIX=prefix,
                SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
                WEB_CONCURRENCY=workers,
            ) as server:
                # With several workers the supervisor keeps the listening socket until they have
                # all exited: new connections wait in its backlog instead of being refused.
                outcome = await _sigterm_with_two_streams(server, check_refusal=workers == "1")
                returncode = server.process.returncode
                logs = server.log_path.read_text()
            short_history = await _history(redis_url, prefix, "short-1")
            slow_history = await _history(redis_url, prefix, "slow-1")
        finally:
            await delete_prefix(redis_url, prefix)

    assert [(e.event, e.data) for e in outcome.short][-1] == ("done", "[DONE]")
    assert short_history == [("user", "hello from short-1"), ("assistant", "short reply done")]

    assert [(e.event, e.data) for e in outcome.slow][-1] == ("error", SHUTDOWN_ERROR)
    assert any(e.event == "message" for e in outcome.slow)
    assert GRACE_SECONDS - 0.5 <= outcome.slow_ended <= GRACE_SECONDS + 10, outcome
    assert slow_history == [], "an interrupted reply is not saved, not even in part"
    assert fake.chat_requests[0].client_closed, "the slow upstream request was hung up"

    assert returncode == 0, logs
    assert outcome.exited <= GRACE_SECONDS + 10
    assert outcome.refused in (True, None), "new connections were accepted during the drain"
    assert '"event": "streams_ended_by_shutdown"' in logs
    assert INTERNAL_KEY not in logs


async def test_a_server_with_nothing_in_flight_stops_at_once(tmp_path: Path) -> None:
    async with running_server(
        tmp_path, INTERNAL_API_KEY=INTERNAL_KEY, SHUTDOWN_GRACE_SECONDS="30"
    ) as server:
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            returncode = await asyncio.to_thread(server.process.wait, 15)
        except subprocess.TimeoutExpired:
            returncode = None
        took = time.monotonic() - sent

    assert returncode == 0
    assert took < 10, "the grace period is a bound, not a wait"
