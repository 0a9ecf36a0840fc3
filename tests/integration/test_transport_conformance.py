"""The two upstream transports behave alike: the same cases against `AsyncioTransport` and httpx's
own `AsyncHTTPTransport`, on real loopback servers.

`UPSTREAM_TRANSPORT` must not change what the adapters see (statuses, bodies, which httpx error),
only what it costs. Where the two legitimately differ, the case asserts each one's behaviour and
says why (docs/transports.md lists them); any other divergence fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal

import httpx
import pytest

from aura_agent.adapters.http_client.transport import AsyncioTransport
from tests.loopback_http import OK_5, Handler, Server, answer, self_signed_cert

pytestmark = pytest.mark.timeout(20)

Kind = Literal["asyncio", "httpx"]
Serve = Callable[[Handler], Awaitable[tuple[str, Server]]]

BOUND = 5.0
"""No case may take longer than this to fail: a transport that hangs instead fails the test."""


@pytest.fixture(params=["asyncio", "httpx"])
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    return value


def make_transport(
    kind: Kind, *, max_connections: int = 10, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncBaseTransport:
    """The transport `build_client` would put under the client for `kind`, with these limits."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=10, keepalive_expiry=30
    )
    if kind == "asyncio":
        return AsyncioTransport(limits=limits, ssl_context=ssl_context)
    return httpx.AsyncHTTPTransport(limits=limits, verify=ssl_context or True)


@contextlib.asynccontextmanager
async def client_for(
    kind: Kind,
    *,
    max_connections: int = 10,
    ssl_context: ssl.SSLContext | None = None,
    timeouts: httpx.Timeout | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    transport = make_transport(kind, max_connections=max_connections, ssl_context=ssl_context)
    timeouts = timeouts or httpx.Timeout(BOUND)
    async with httpx.AsyncClient(transport=transport, timeout=timeouts) as client:
        yield client


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[Server] = []

    async def start(handler: Handler) -> tuple[str, Server]:
        server = Server(handler)
        servers.append(server)
        return await server.start(), server

    yield start
    for server in servers:
        server.close()


async def _streamed(client: httpx.AsyncClient, url: str) -> bytes:
    """POST and read the body piece by piece, as the adapters do; at most BOUND."""
    async with asyncio.timeout(BOUND), client.stream("POST", url, content=b"{}") as response:
        return b"".join([part async for part in response.aiter_bytes()])


async def _until_the_client_leaves(reader: asyncio.StreamReader) -> None:
    """A server that stalls: nothing more until the client hangs up (at most 3 s)."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(3):
            while await reader.read(65536):
                pass


# -- requests and bodies ----------------------------------------------------------------------


async def test_status_reason_headers_and_the_request_sent(kind: Kind, serve: Serve) -> None:
    url, server = await serve(
        answer(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nX-Twice: a\r\nX-Twice: b\r\n"
            b"Content-Length: 2\r\n\r\nno"
        )
    )
    async with client_for(kind) as client:
        response = await client.post(url + "?x=1", content=b'{"a": 1}', headers={"X-Key": "k"})
    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["retry-after"] == "7"
    assert response.headers.get_list("x-twice") == ["a", "b"]
    assert response.content == b"no"
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")
    assert request.endswith(b'\r\n\r\n{"a": 1}')
    assert b"\r\nx-key: k\r\n" in request.lower()
    assert b"\r\ncontent-length: 8\r\n" in request.lower()


def _in_pieces(head: bytes, *pieces: bytes, keep: bool) -> Handler:
    """The head, then each piece in its own write a little later (the body arrives in reads)."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(head)
        await writer.drain()
        for piece in pieces:
            await asyncio.sleep(0.02)
            writer.write(piece)
            await writer.drain()
        return keep

    return handler


BODIES = {
    "content-length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
        (b"hello", b" world"),
        True,
    ),
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        (b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"),
        True,
    ),
    "close-delimited": (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n\r\n",
        (b"hello", b" world"),
        False,  # no length, not chunked: the body ends when the server closes
    ),
}


@pytest.mark.parametrize("framing", list(BODIES))
async def test_a_body_streamed_in_pieces(kind: Kind, serve: Serve, framing: str) -> None:
    head, pieces, keep = BODIES[framing]
    url, server = await serve(_in_pieces(head, *pieces, keep=keep))
    async with client_for(kind) as client:
        for _ in range(2):
            assert await _streamed(client, url) == b"hello world"
    # a framed body leaves the connection reusable; a close-delimited one cannot
    assert server.connections == (1 if keep else 2)


async def test_a_chunked_body_cut_short_is_a_protocol_error(kind: Kind, serve: Serve) -> None:
    url, _ = await serve(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", keep=False)
    )
    async with client_for(kind) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await _streamed(client, url)


async def test_interim_responses_are_skipped(kind: Kind, serve: Serve) -> None:
    url, _ = await serve(
        answer(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + OK_5
        )
    )
    async with client_for(kind) as client:
        response = await client.post(url, content=b"{}")
    assert (response.status_code, response.content) == (200, b"hello")
    assert "link" not in response.headers  # the 103's headers are not the response's


# -- broken responses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 200_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Many: a\r\n" * 20_000 + b"\r\n",
        b"",  # closed without a byte
    ],
    ids=["garbage", "one huge header", "many headers", "no response"],
)
async def test_a_broken_head_is_a_protocol_error_not_a_hang(
    kind: Kind, serve: Serve, reply: bytes
) -> None:
    url, _ = await serve(answer(reply, keep=False))
    started = time.monotonic()
    async with client_for(kind) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            async with asyncio.timeout(BOUND):
                await client.post(url, content=b"{}")
    assert time.monotonic() - started < BOUND


async def test_a_large_head_under_the_limit_is_read(kind: Kind, serve: Serve) -> None:
    """Both stop at 100 KiB of head (httpcore's h11 limit, `HEAD_LIMIT` in `connection`); 60 kB
    in several reads, as a slow server sends it, is still a head."""
    pieces = [b"b" * 10_000] * 6 + [b"\r\nContent-Length: 5\r\n\r\nhello"]
    url, _ = await serve(_in_pieces(b"HTTP/1.1 200 OK\r\nX-Big: ", *pieces, keep=True))
    async with client_for(kind) as client:
        response = await client.post(url, content=b"{}")
    assert response.content == b"hello"
    assert len(response.headers["x-big"]) == 60_000


# -- the pool ---------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(kind: Kind, serve: Serve) -> None:
    url, server = await serve(answer(OK_5))
    async with client_for(kind) as client:
        for _ in range(2):
            assert (await client.post(url, content=b"{}")).content == b"hello"
    assert server.connections == 1
    assert len(server.requests) == 2


async def test_connection_close_is_not_reused(kind: Kind, serve: Serve) -> None:
    url, server = await serve(
        answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    )
    async with client_for(kind) as client:
        for _ in range(2):
            assert (await client.post(url, content=b"{}")).content == b"ok"
    assert server.connections == 2


async def test_an_idle_connection_closed_by_the_server_is_replaced(
    kind: Kind, serve: Serve
) -> None:
    """The server hangs up on a kept-alive connection while it is idle in the pool."""
    closed = asyncio.Event()

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(OK_5)  # answers, then closes without saying so
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()
        return False

    url, server = await serve(handler)
    async with client_for(kind) as client:
        assert (await client.post(url, content=b"{}")).content == b"hello"
        await asyncio.wait_for(closed.wait(), BOUND)
        await asyncio.sleep(0.1)  # for the client's loop to see the FIN
        assert (await client.post(url, content=b"{}")).content == b"hello"
    assert (server.connections, len(server.requests)) == (2, 2)  # one request on each


async def test_a_connection_closed_as_the_next_request_arrives(kind: Kind, serve: Serve) -> None:
    """The server closes a kept-alive connection on reading the next request, answering nothing
    (its keep-alive timeout racing the request)."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> bool:
        if index == 1:
            return False
        writer.write(OK_5)
        await writer.drain()
        return True

    url, server = await serve(handler)
    async with client_for(kind) as client:
        assert (await client.post(url, content=b"{}")).content == b"hello"
        if kind == "asyncio":
            # AsyncioTransport sends a request again, once, on a new connection when a reused
            # one fails before any response byte: that is how a closed idle connection looks
            assert (await client.post(url, content=b"{}")).content == b"hello"
            assert (server.connections, len(server.requests)) == (2, 3)
        else:
            # httpcore retries connection attempts only (`retries=`) and catches a closed idle
            # connection by probing it before reuse, which this race defeats; the adapters
            # report it like any broken upstream
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(url, content=b"{}")
            assert (server.connections, len(server.requests)) == (1, 2)


async def test_the_pool_cap_makes_a_request_wait_then_time_out(kind: Kind, serve: Serve) -> None:
    url, server = await serve(answer(OK_5))
    async with client_for(kind, max_connections=1) as client:
        held = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        short = httpx.Timeout(BOUND, pool=0.1)
        started = time.monotonic()
        with pytest.raises(httpx.PoolTimeout):
            await client.post(url, content=b"{}", timeout=short)
        assert 0.08 < time.monotonic() - started < 1.0
        waiting = asyncio.create_task(client.post(url, content=b"{}"))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # the one connection is still held
        assert await held.aread() == b"hello"
        await held.aclose()
        response = await asyncio.wait_for(waiting, BOUND)
        assert response.content == b"hello"
    assert server.connections == 1  # the waiter got the freed connection


async def test_closing_a_response_early_hangs_up(kind: Kind, serve: Serve) -> None:
    """A reply cancelled mid-stream: the upstream must see the hang-up (so it stops generating)."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    url, server = await serve(handler)
    async with client_for(kind) as client:
        async with client.stream("POST", url, content=b"{}") as response:
            async for _ in response.aiter_bytes():
                break
        await asyncio.wait_for(server.hung_up.wait(), BOUND)


# -- timeouts and connecting ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before the head", "mid-body"])
async def test_silence_is_a_read_timeout(kind: Kind, serve: Serve, where: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        if where == "mid-body":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await writer.drain()
        await _until_the_client_leaves(reader)
        return False

    url, _ = await serve(handler)
    started = time.monotonic()
    async with client_for(kind, timeouts=httpx.Timeout(BOUND, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await _streamed(client, url)
    assert 0.15 < time.monotonic() - started < 2.0


async def test_a_refused_port_is_a_connect_error(kind: Kind) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
    async with client_for(kind) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/v1/chat", content=b"{}")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


async def test_tls_with_a_trusted_self_signed_certificate(
    kind: Kind, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Server(answer(OK_5))
    url = await server.start(server_context)
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        async with client_for(kind, ssl_context=trusting) as client:
            for _ in range(2):
                assert (await client.post(url, content=b"{}")).content == b"hello"
        # the default CAs refuse a self-signed certificate
        async with client_for(kind) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post(url, content=b"{}")
    finally:
        server.close()
    assert server.connections == 1  # kept alive over TLS; the refused handshake never got here
