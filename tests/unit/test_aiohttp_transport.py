"""The aiohttp transport keeps httpx's meaning: statuses, bodies, timeouts and errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from aura_agent.adapters.llm.aiohttp_transport import AiohttpTransport
from tests.support import read_http_request

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A one-handler HTTP server on loopback that records whether clients hung up."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.closed_by_client = asyncio.Event()
        self.requests: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await read_http_request(reader))
            await self.handler(reader, writer)
            if await reader.read(1) == b"":
                self.closed_by_client.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client.set()
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[str, RawServer]]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> tuple[str, RawServer]:
        raw = RawServer(handler)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat", raw

    yield start
    for server in servers:
        server.close()


def _client(read_timeout: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=10, keepalive_expiry=5)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(5.0, read=read_timeout),
    )


async def test_status_headers_and_a_chunked_body(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: text/event-stream\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        await writer.drain()

    url, raw = await serve(handler)
    async with _client() as client:
        response = await client.post(url, content=b'{"x": 1}', headers={"authorization": "k"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.text == "hello world"
    assert raw.requests[0].endswith(b'{"x": 1}')
    assert b"authorization: k" in raw.requests[0].lower()


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{port}/", content=b"{}")


async def test_silence_is_a_read_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(2)

    url, _ = await serve(handler)
    async with _client(read_timeout=0.2) as client, client.stream("POST", url, content=b"{}") as r:
        with pytest.raises(httpx.ReadTimeout):
            async for _ in r.aiter_bytes():
                pass


async def test_a_body_cut_short_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        writer.transport.abort()

    url, _ = await serve(handler)
    async with _client() as client, client.stream("POST", url, content=b"{}") as r:
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in r.aiter_bytes():
                pass


async def test_closing_a_stream_early_hangs_up_on_the_server(serve) -> None:  # type: ignore[no-untyped-def]
    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            writer.write(b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)

    url, raw = await serve(handler)
    async with _client() as client:
        async with client.stream("POST", url, content=b"{}") as r:
            async for _ in r.aiter_bytes():
                break
        await asyncio.wait_for(raw.closed_by_client.wait(), 2)


async def test_a_body_read_to_its_end_gives_the_connection_back() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_http_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat"
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=10))
    try:
        for _ in range(3):  # read the transport's own stream, as the adapters do
            request = httpx.Request("POST", url, content=b"{}", extensions={"timeout": {}})
            response = await transport.handle_async_request(request)
            stream = response.stream
            assert isinstance(stream, httpx.AsyncByteStream)
            assert b"".join([part async for part in stream]) == b"hello"
            await response.aclose()
    finally:
        await transport.aclose()
        server.close()
    assert connections == 1
