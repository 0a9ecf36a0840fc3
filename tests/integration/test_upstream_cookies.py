"""The shared upstream client keeps no provider cookies between callers, on any transport."""

from __future__ import annotations

import asyncio

import pytest

from aura_agent.container import _http_client
from tests.support import make_settings


@pytest.mark.parametrize("transport", ["httpx", "asyncio"])
async def test_a_provider_cookie_is_not_sent_back(transport: str) -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            seen.append(head.lower())
            writer.write(
                b"HTTP/1.1 200 OK\r\nSet-Cookie: __cf_bm=tenant-a-secret; Path=/\r\n"
                b"Content-Length: 2\r\n\r\nok"
            )
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/models"
    clients = _http_client(make_settings(upstream_transport=transport))
    client = await anext(clients)
    try:
        first = await client.get(url)
        await client.get(url)
    finally:
        await clients.aclose()
        server.close()
    assert first.headers["set-cookie"].startswith("__cf_bm=")
    assert len(seen) == 2
    assert b"cookie:" not in seen[1]
