"""The instance's stream cap, the total time limit of a reply, and a client that never reads.

All through a real uvicorn server (httptools, as `aura-agent serve` runs it) on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import structlog
import uvicorn
from litestar import Litestar

from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, StreamEnd, TextDelta
from aura_agent.http.sse.control import FINAL_WRITE_SECONDS
from tests.conftest import AppFactory
from tests.support import API_KEY, AUTH, ScriptedModel, parse_sse, terminal_event, tokens_of

OTHER_KEY = "other-tenant-key-31d7a0"
OTHER = {"x-api-key": OTHER_KEY}
CHUNK = "x" * 4096
FLOOD_BOUND = 64 * 1024 * 1024
"""Bytes the app may take from the model for a client that reads nothing: kernel socket buffers
plus uvicorn's write buffer (a few MB on loopback). Without flow control a tight producer
passes this within a second."""


class SteadyModel:
    """Tokens every `delay` seconds, `count` of them (None: without end); "quick" gets one."""

    def __init__(self, *, delay: float = 0.0, count: int | None = None, text: str = CHUNK) -> None:
        self.delay = delay
        self.count = count
        self.text = text
        self.produced = 0
        self.closed = 0
        self.release = asyncio.Event()

    @property
    def provider(self) -> str:
        return "steady"

    @property
    def default_model(self) -> str:
        return "steady-model"

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        try:
            if messages[-1].content == "quick":
                yield TextDelta("ok")
            elif messages[-1].content == "hold":
                yield TextDelta("first")
                await self.release.wait()
            else:
                sent = 0
                while self.count is None or sent < self.count:
                    self.produced += len(self.text)
                    sent += 1
                    yield TextDelta(self.text)
                    await asyncio.sleep(self.delay)
            yield StreamEnd(finish_reason="stop")
        finally:
            self.closed += 1

    async def check(self) -> None:
        return None


@contextlib.asynccontextmanager
async def _server(app: Litestar) -> AsyncIterator[tuple[str, int]]:
    """`app` under uvicorn with httptools on 127.0.0.1; yields its base URL and port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http="httptools", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def _chat(message: str, session_id: str | None = None) -> dict[str, Any]:
    return {"message": message, "session_id": session_id}


async def _post(base: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.post("/chat", json=body, headers=headers)


# -- the instance's cap on concurrent streams -------------------------------------------------


async def test_beyond_the_instance_cap_a_stream_fails_fast_with_503(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()
    app = build_app(
        chat_model=model,
        max_concurrent_streams=1,
        internal_api_keys=f"other:{OTHER_KEY}",
    )
    async with (
        _server(app) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("POST", "/chat", json=_chat("hold"), headers=AUTH) as held,
    ):
        chunks = held.aiter_raw()
        first = await anext(chunks)
        refused = await _post(base, _chat("quick"), OTHER)
        model.release.set()
        rest = b"".join([chunk async for chunk in chunks])
        after = await _post(base, _chat("quick"), OTHER)

    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"] == (
        "this instance is serving its maximum of 1 streams; retry shortly"
    )
    assert terminal_event(parse_sse(first + rest)).event == "done"
    assert after.status_code == 200, "the slot is free again once the stream ended"
    assert model.closed == 2, "the refused request never reached the model"


async def test_a_stream_refused_by_its_tenant_limit_leaves_no_instance_slot_taken(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()
    app = build_app(chat_model=model, max_concurrent_streams=2, max_streams_per_key=1)
    async with (
        _server(app) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("POST", "/chat", json=_chat("hold"), headers=AUTH) as held,
    ):
        chunks = held.aiter_raw()
        await anext(chunks)
        refusals = [(await _post(base, _chat("quick"), AUTH)).status_code for _ in range(3)]
        model.release.set()
        rest = b"".join([chunk async for chunk in chunks])
        after = [(await _post(base, _chat("quick"), AUTH)).status_code for _ in range(3)]

    assert refusals == [429, 429, 429], "the tenant limit, not a leaked instance slot"
    assert b"event: done" in rest
    assert after == [200, 200, 200]


# -- the total time limit ---------------------------------------------------------------------


async def test_a_reply_longer_than_the_total_limit_ends_with_an_error_and_is_not_saved(
    build_app: AppFactory,
) -> None:
    model = SteadyModel(delay=0.05, text="word ")
    app = build_app(chat_model=model, upstream_total_timeout=0.5)
    with structlog.testing.capture_logs() as logs:
        async with _server(app) as (base, _):
            response = await _post(base, _chat("go on forever", "long-1"), AUTH)
            async with httpx.AsyncClient(base_url=base) as http:
                history = await http.get("/sessions/long-1", headers=AUTH)

    events = parse_sse(response.content)
    ending = terminal_event(events)
    assert (ending.event, ending.data) == ("error", "the reply took longer than 0.5 s")
    assert 0 < len(tokens_of(events)) < 40, "tokens flowed until the limit, then stopped"
    assert history.status_code == 404, "a cut reply saves nothing"
    assert model.closed == 1, "the upstream stream was closed"
    line = next(log for log in logs if log["event"] == "request" and log["path"] == "/chat")
    assert line["outcome"] == "error:total_timeout"


async def test_the_limit_also_covers_the_wait_for_the_first_token(build_app: AppFactory) -> None:
    model = ScriptedModel(["late"], first_token_delay=30)
    app = build_app(chat_model=model, upstream_total_timeout=0.3, keepalive_seconds=0.1)
    async with _server(app) as (base, _):
        response = await _post(base, _chat("hi"), AUTH)

    events = parse_sse(response.content)
    assert tokens_of(events) == []
    assert (terminal_event(events).event, terminal_event(events).data) == (
        "error",
        "the reply took longer than 0.3 s",
    )
    assert model.closed == 1


async def test_a_reply_within_the_limit_is_untouched_and_saved(build_app: AppFactory) -> None:
    model = SteadyModel(delay=0.01, count=5, text="w ")
    app = build_app(chat_model=model, upstream_total_timeout=30)
    async with _server(app) as (base, _):
        response = await _post(base, _chat("short", "short-1"), AUTH)
        async with httpx.AsyncClient(base_url=base) as http:
            history = await http.get("/sessions/short-1", headers=AUTH)

    assert terminal_event(parse_sse(response.content)).event == "done"
    assert [m["content"] for m in history.json()["messages"]] == ["short", "w " * 5]


# -- a client that never reads ----------------------------------------------------------------


def _open_and_never_read(port: int, body: dict[str, Any]) -> socket.socket:
    """Send a /chat request on a raw socket with a small receive buffer, and read nothing."""
    payload = json.dumps(body).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"x-api-key: {API_KEY}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sent, once it has closed the connection."""
    sock.settimeout(timeout)
    received = bytearray()
    while chunk := sock.recv(1 << 20):
        received += chunk
    return bytes(received)


async def test_a_client_that_never_reads_cannot_pin_memory_or_a_stream_slot(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()  # 4 KiB tokens, as fast as they are taken, without end
    total_timeout = 4.0
    app = build_app(
        chat_model=model, upstream_total_timeout=total_timeout, max_concurrent_streams=1
    )
    async with _server(app) as (base, port):
        sock = await asyncio.to_thread(_open_and_never_read, port, _chat("flood"))
        try:
            # uvicorn's send() awaits while the transport's buffer is above its high-water mark,
            # so the producer stalls once the socket buffers are full.
            samples: list[int] = []
            for _ in range(300):
                await asyncio.sleep(0.05)
                samples.append(model.produced)
                if len(samples) > 10 and samples[-1] == samples[-11] > 0:
                    break
            stalled_while_open = model.closed == 0
            during = await _post(base, _chat("quick"), AUTH)
            # The total limit ends the stream; its last write cannot go out either, so after
            # FINAL_WRITE_SECONDS the connection is dropped and the slot given back.
            after = during
            for _ in range(int((total_timeout + FINAL_WRITE_SECONDS + 10) / 0.1)):
                if after.status_code == 200:
                    break
                await asyncio.sleep(0.1)
                after = await _post(base, _chat("quick"), AUTH)
            received = await asyncio.to_thread(_read_until_closed, sock, 10)
        finally:
            sock.close()

    assert samples[-1] == samples[-11] > 0, f"the producer never stalled: {samples[-12:]}"
    assert stalled_while_open, "it stalled because of the client, not the time limit"
    assert model.produced < FLOOD_BOUND, model.produced
    assert during.status_code == 503, "the unread stream still held its slot"
    assert after.status_code == 200
    assert model.closed == 2, "the flood's upstream was closed, and the quick reply's"
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert len(received) <= model.produced + 64 * 1024
