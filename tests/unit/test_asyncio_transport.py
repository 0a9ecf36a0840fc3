"""The asyncio transport: httpx's meaning (statuses, bodies, timeouts, errors) on loopback servers,
plus its own pool, flow control and retry rules."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from aura_agent.adapters.http_client.transport import AsyncioTransport
from tests.loopback_http import OK_5, Handler, Server, answer, self_signed_cert

# pytest-asyncio's replacement (the `pytest_asyncio_loop_factories` hook) would apply to every
# test under the conftest that defines it; overriding the policy keeps this to one module.
pytestmark = pytest.mark.filterwarnings(
    'ignore:Overriding the "event_loop_policy" fixture is deprecated'
)


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every case on both loops: the app runs on uvloop, the other tests on asyncio's."""
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, Server]]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> tuple[str, Server]:
        server = Server(handler)
        servers.append(server)
        return await server.start(), server

    yield start
    for server in servers:
        server.close()


def _transport(**limits: Any) -> AsyncioTransport:
    return AsyncioTransport(limits=httpx.Limits(**{"max_connections": 10, **limits}))


def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The transport's own body stream, read one `__anext__` at a time."""
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    return aiter(stream)


@contextlib.asynccontextmanager
async def _opened(**limits: Any) -> AsyncIterator[AsyncioTransport]:
    """A transport that is closed after the test, however it ends."""
    transport = _transport(**limits)
    try:
        yield transport
    finally:
        await transport.aclose()


def _request(
    url: str, body: bytes = b"{}", *, method: str = "POST", read: float | None = 5.0, **kw: Any
) -> httpx.Request:
    timeout = {"connect": 5.0, "read": read, "write": 5.0, "pool": kw.pop("pool", 5.0)}
    content = body if method != "GET" else None
    return httpx.Request(method, url, content=content, extensions={"timeout": timeout}, **kw)


async def _body(response: httpx.Response) -> bytes:
    """Read the transport's own stream, as the adapters do."""
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    try:
        return b"".join([part async for part in stream])
    finally:
        await response.aclose()


# -- requests and bodies ----------------------------------------------------------------------


async def test_status_headers_and_a_chunked_body(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(
        answer(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: text/event-stream\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
    )
    async with httpx.AsyncClient(transport=_transport()) as client:
        response = await client.post(url, content=b'{"x": 1}', headers={"authorization": "k"})
    assert response.status_code == 429
    assert response.reason_phrase == "Too Many Requests"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["retry-after"] == "7"
    assert response.text == "hello world"
    request = server.requests[0]
    assert request.startswith(b"POST /v1/chat HTTP/1.1\r\n")
    assert request.endswith(b'\r\n\r\n{"x": 1}')
    assert b"\r\nauthorization: k\r\n" in request.lower()
    assert b"\r\ncontent-length: 8\r\n" in request.lower()


async def test_a_get_has_no_body_and_keeps_the_query(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5))
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url + "?a=1&b=2", method="GET"))
        assert await _body(response) == b"hello"
    request = server.requests[0]
    assert request.startswith(b"GET /v1/chat?a=1&b=2 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert request.endswith(b"\r\n\r\n")
    assert b"content-length" not in request.lower()


async def test_a_body_not_read_yet_is_read_and_sent_chunked(serve) -> None:  # type: ignore[no-untyped-def]
    async def parts() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> bool:
        seen.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(OK_5)
        await writer.drain()
        return True

    url, server = await serve(handler)
    async with _opened() as transport:
        request = httpx.Request("POST", url, content=parts(), extensions={"timeout": {}})
        assert await _body(await transport.handle_async_request(request)) == b"hello"
    assert b"transfer-encoding: chunked" in server.requests[0].lower()
    assert seen == [b"4\r\nabcd\r\n0\r\n\r\n"]


async def test_content_length_and_close_delimited_bodies(serve) -> None:  # type: ignore[no-untyped-def]
    replies = [
        OK_5,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nuntil the end",
    ]

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> bool:
        writer.write(replies[index])
        await writer.drain()
        return index == 0  # the second body ends when the connection does

    url, server = await serve(handler)
    async with _opened() as transport:
        first = await transport.handle_async_request(_request(url))
        assert await _body(first) == b"hello"
        second = await transport.handle_async_request(_request(url))
        assert await _body(second) == b"until the end"
        assert transport.connection_counts() == (0, 0)  # not reusable after a close-delimited body
    assert server.connections == 1


async def test_a_close_delimited_body_ended_by_a_reset_is_a_read_error(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npart")
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    url, _ = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url))
        chunks = _chunks(response)
        assert await anext(chunks) == b"part"
        with pytest.raises(httpx.ReadError):
            await anext(chunks)
        await response.aclose()
        assert transport.connection_counts() == (0, 0)


async def test_a_chunked_body_cut_short_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = await serve(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", keep=False)
    )
    async with (
        httpx.AsyncClient(transport=_transport()) as client,
        client.stream("POST", url, content=b"{}") as response,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in response.aiter_bytes():
                pass


@pytest.mark.parametrize(
    "reply",
    [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000 + b"\r\n\r\n"],
    ids=["garbage", "huge header"],
)
async def test_garbage_is_a_protocol_error(serve, reply: bytes) -> None:  # type: ignore[no-untyped-def]
    url, _ = await serve(answer(reply, keep=False))
    async with _opened() as transport:
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(_request(url))
        assert transport.connection_counts() == (0, 0)


async def test_no_response_at_all_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = await serve(answer(b"", keep=False))
    async with _opened() as transport:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await transport.handle_async_request(_request(url))


async def test_a_big_body_in_the_same_read_as_the_head(serve) -> None:  # type: ignore[no-untyped-def]
    body = b"y" * 300_000
    url, _ = await serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + body))
    async with _opened() as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == body


async def test_data_after_the_response_is_not_taken_for_its_body(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5 + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad"))
    async with _opened() as transport:
        for _ in range(2):
            assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
            assert transport.connection_counts() == (0, 0)  # not reusable
    assert server.connections == 2


async def test_an_interim_response_is_skipped(serve) -> None:  # type: ignore[no-untyped-def]
    url, _ = await serve(answer(b"HTTP/1.1 100 Continue\r\n\r\n" + OK_5))
    async with httpx.AsyncClient(transport=_transport()) as client:
        response = await client.post(url, content=b"{}")
    assert (response.status_code, response.text) == (200, "hello")


async def test_unsupported_urls_and_header_injection() -> None:
    transport = _transport()
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(_request("ftp://127.0.0.1/x"))
    request = _request("http://127.0.0.1:9/x", headers={"x-evil": "a\r\nInjected: yes"})
    with pytest.raises(httpx.LocalProtocolError):
        await transport.handle_async_request(request)
    await transport.aclose()


# -- the pool ---------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5))
    async with _opened() as transport:
        for _ in range(20):
            assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
            assert transport.connection_counts() == (0, 1)
    assert server.connections == 1
    assert len(server.requests) == 20
    await asyncio.wait_for(server.hung_up.wait(), 2)  # aclose() closed the pooled connection


@pytest.mark.parametrize("side", ["response", "request"])
async def test_connection_close_is_not_reused(serve, side: str) -> None:  # type: ignore[no-untyped-def]
    close = b"Connection: close\r\n" if side == "response" else b""
    url, server = await serve(
        answer(b"HTTP/1.1 200 OK\r\n" + close + b"Content-Length: 2\r\n\r\nok")
    )
    headers = {"Connection": "close"} if side == "request" else {}
    async with _opened() as transport:
        for _ in range(3):
            response = await transport.handle_async_request(_request(url, headers=headers))
            assert await _body(response) == b"ok"
            assert transport.connection_counts() == (0, 0)
    assert server.connections == 3


async def test_an_idle_connection_the_server_closes_leaves_the_pool(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5, keep=False))  # answers, then closes without saying so
    async with _opened() as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
        for _ in range(100):
            if transport.connection_counts() == (0, 0):
                break
            await asyncio.sleep(0.01)
        assert transport.connection_counts() == (0, 0)
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
    assert server.connections == 2


async def test_idle_connections_expire(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5))
    async with _opened(keepalive_expiry=0.1) as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
        await asyncio.sleep(0.2)
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
    assert server.connections == 2


async def test_a_stale_connection_is_retried_once_on_a_new_one(serve) -> None:  # type: ignore[no-untyped-def]
    """The server closes a kept-alive connection as the next request arrives: sent again."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> bool:
        if index == 1:
            return False  # closed without a byte of response
        writer.write(OK_5)
        await writer.drain()
        return True

    url, server = await serve(handler)
    async with _opened() as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
    assert server.connections == 2
    assert len(server.requests) == 3


async def test_a_stale_retry_happens_only_once(serve) -> None:  # type: ignore[no-untyped-def]
    servers: list[Server] = []

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> bool:
        if servers[0].connections > 1 or index == 1:
            return False  # every later request is closed without an answer
        writer.write(OK_5)
        await writer.drain()
        return True

    url, server = await serve(handler)
    servers.append(server)
    async with _opened() as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(_request(url))
    assert server.connections == 2  # the reused one, then one retry: no third attempt
    assert len(server.requests) == 3


async def test_no_retry_once_response_bytes_arrived(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> bool:
        writer.write(OK_5 if index == 0 else b"HTTP/1.1 200 OK\r\n")
        await writer.drain()
        return index == 0

    url, server = await serve(handler)
    async with _opened() as transport:
        assert await _body(await transport.handle_async_request(_request(url))) == b"hello"
        with pytest.raises(httpx.RemoteProtocolError):
            await transport.handle_async_request(_request(url))
    assert server.connections == 1
    assert len(server.requests) == 2


async def test_the_pool_cap_makes_requests_wait_or_time_out(serve) -> None:  # type: ignore[no-untyped-def]
    url, server = await serve(answer(OK_5))
    async with _opened(max_connections=1) as transport:
        held = await transport.handle_async_request(_request(url))  # body not read: busy
        assert transport.connection_counts() == (1, 1)
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(_request(url, pool=0.1))
        waiting = asyncio.create_task(transport.handle_async_request(_request(url, pool=5)))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await _body(held) == b"hello"  # frees the connection: the waiter gets it
        assert await _body(await asyncio.wait_for(waiting, 2)) == b"hello"
    assert server.connections == 1


async def test_the_pool_cap_closes_an_idle_connection_to_another_host(serve) -> None:  # type: ignore[no-untyped-def]
    url_a, _ = await serve(answer(OK_5))
    url_b, _ = await serve(answer(OK_5))
    async with _opened(max_connections=1) as transport:
        assert await _body(await transport.handle_async_request(_request(url_a))) == b"hello"
        assert await _body(await transport.handle_async_request(_request(url_b, pool=0.5))) == (
            b"hello"
        )
        assert transport.connection_counts() == (0, 1)


# -- streaming: early close, flow control, timeouts ------------------------------------------


async def test_closing_a_stream_early_hangs_up_on_the_server(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        return False

    url, server = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url))
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for _ in stream:
            break
        await response.aclose()
        assert transport.connection_counts() == (0, 0)
        await asyncio.wait_for(server.hung_up.wait(), 2)


async def test_a_slow_reader_keeps_the_buffer_bounded(serve) -> None:  # type: ignore[no-untyped-def]
    size = 10 * 1024 * 1024
    sent = 0

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        piece = b"x" * 65536
        for _ in range(size // len(piece)):
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        return True

    url, _ = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url))
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        received = 0
        largest = 0
        reads = 0
        async for part in stream:
            received += len(part)
            largest = max(largest, len(part))
            reads += 1
            if reads <= 20:
                await asyncio.sleep(0.02)  # a slow consumer at first
                # what was sent is what was read plus socket buffers and at most one read more
                assert sent - received < 8 * 1024 * 1024, (sent, received)
        await response.aclose()
    assert received == size
    assert largest <= 512 * 1024, largest  # never more buffered than the high-water mark + a read


async def test_silence_is_a_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        if await asyncio.wait_for(reader.read(1), 2) == b"":
            hung_up.set()
        return False

    hung_up = asyncio.Event()
    url, _ = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url, read=0.2))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await _body(response)
        assert 0.15 < loop.time() - started < 1.0
        await asyncio.wait_for(hung_up.wait(), 2)  # the silent upstream was hung up on


async def test_no_headers_in_time_is_a_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, __: asyncio.StreamWriter, ___: int) -> bool:
        await asyncio.sleep(2)
        return False

    url, _ = await serve(handler)
    async with _opened() as transport:
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(_request(url, read=0.2))
        assert transport.connection_counts() == (0, 0)


async def test_the_read_timeout_is_silence_not_total_time(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    url, _ = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url, read=0.3))
        assert await _body(response) == b"x" * 8
        # the next request, with a shorter timeout, is not held to the previous one's timer
        response = await transport.handle_async_request(_request(url, read=0.05))
        with pytest.raises(httpx.ReadTimeout):
            await _body(response)


async def test_a_cancelled_read_leaves_the_stream_usable(serve) -> None:  # type: ignore[no-untyped-def]
    """As the first-token deadline does: a read cancelled, then the stream read on."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"cd")
        await writer.drain()
        return True

    url, _ = await serve(handler)
    async with _opened() as transport:
        response = await transport.handle_async_request(_request(url))
        chunks = _chunks(response)
        assert await anext(chunks) == b"ab"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await anext(chunks)
        assert await anext(chunks) == b"cd"
        await response.aclose()
        assert transport.connection_counts() == (0, 1)


# -- connecting -------------------------------------------------------------------------------


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _opened() as transport:
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(_request(f"http://127.0.0.1:{port}/"))
        assert transport.connection_counts() == (0, 0)


async def test_a_slow_connect_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def hanging(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", hanging)
    transport = _transport()
    request = httpx.Request(
        "POST", "http://127.0.0.1:9/", content=b"{}", extensions={"timeout": {"connect": 0.05}}
    )
    with pytest.raises(httpx.ConnectTimeout):
        await transport.handle_async_request(request)
    assert transport.connection_counts() == (0, 0)


@pytest.mark.parametrize(("scheme", "tls"), [("http", False), ("https", True)])
async def test_connection_arguments(
    monkeypatch: pytest.MonkeyPatch, scheme: str, tls: bool
) -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(loop, "create_connection", recording)
    context = ssl.create_default_context()
    transport = AsyncioTransport(ssl_context=context)
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(_request(f"{scheme}://example.test/v1"))
    (args, kwargs) = calls[0]
    assert args[1:] == ("example.test", 443 if tls else 80)
    assert kwargs["ssl"] is (context if tls else None)
    assert kwargs["server_hostname"] == ("example.test" if tls else None)


async def test_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Server(answer(OK_5))
    url = await server.start(server_context)
    trusting = AsyncioTransport(ssl_context=ssl.create_default_context(cafile=str(cert)))
    default = AsyncioTransport()  # the system's CAs: the self-signed certificate is refused
    try:
        for _ in range(2):
            response = await trusting.handle_async_request(_request(url))
            assert await _body(response) == b"hello"
        with pytest.raises(httpx.ConnectError):
            await default.handle_async_request(_request(url))
    finally:
        await trusting.aclose()
        await default.aclose()
        server.close()
    assert server.connections == 1  # kept alive over TLS (the refused handshake never got here)
