"""An httpx transport on plain asyncio protocols and httptools: HTTP/1.1 and nothing else.

The relay sends one streaming POST per chat turn and reads tokens back, so a general client's
per-request machinery is a large share of the gateway's CPU per stream (docs/transports.md).
This transport does only what the relay needs: one write per request and the body as it arrives
(`connection`), a pool per (scheme, host, port) (`pool`), and a reused connection that fails
before any response byte (the server closed it while it was idle) retried once on a new
connection (here).

No cookies, redirects, proxies or decompression: httpx decodes by Content-Encoding, and the
adapters send `Accept-Encoding: identity`. Deployments behind an egress proxy use
`UPSTREAM_TRANSPORT=httpx`. Failures raise httpx's exceptions, as httpx's own transport does.
"""

from __future__ import annotations

import ssl
from typing import Final

import httpx

from aura_agent.adapters.http_client.connection import Connection, Key, ResponseStream
from aura_agent.adapters.http_client.pool import ConnectionPool

__all__ = ["AsyncioTransport"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class AsyncioTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AsyncioTransport(...))`; see the module docstring."""

    def __init__(
        self, *, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._connections = ConnectionPool(limits or httpx.Limits(), ssl_context)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; the response is returned with its body still streaming."""
        pool = self._connections
        if pool.closing:
            raise RuntimeError("The transport is closed.")
        key = _key(request)
        data, keep_alive = await _serialized(request)
        timeouts = request.extensions.get("timeout") or {}
        read_timeout = timeouts.get("read")
        fresh = False
        while True:
            conn = await pool.acquire(key, timeouts, fresh=fresh, request=request)
            reused = conn.exchanges > 0
            try:
                conn.start(data, read_timeout, keep_alive)
                while not conn.head_done:
                    if conn.failure is not None:
                        break
                    await conn.wait()
            except BaseException:  # cancelled while waiting: nobody will read this response
                conn.close()
                raise
            if conn.head_done:
                break
            conn.close()
            if reused and not fresh and not conn.got_bytes and _may_be_stale(conn):
                fresh = True  # closed by the server while idle: once more, on a new connection
                continue
            raise conn.error(request)
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": conn.reason}
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=ResponseStream(conn, request),
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection; busy ones close when their responses end."""
        await self._connections.aclose()

    def connection_counts(self) -> tuple[int, int]:
        """(connections in use, connections open), for tests and diagnostics."""
        return self._connections.connection_counts()


def _key(request: httpx.Request) -> Key:
    url = request.url
    scheme = url.scheme
    port = _DEFAULT_PORTS.get(scheme)
    if port is None:
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{scheme}://'.", request=request
        )
    host = url.host
    if not host:
        raise httpx.UnsupportedProtocol("Request URL is missing a host.", request=request)
    return scheme, host, url.port or port


async def _serialized(request: httpx.Request) -> tuple[bytes, bool]:
    """The request's bytes on the wire, and whether the connection may be kept afterwards."""
    try:
        body = request.content
    except httpx.RequestNotRead:
        body = await request.aread()
    method = request.method.encode("ascii")
    lines = [method + b" " + request.url.raw_path + b" HTTP/1.1"]
    keep_alive = True
    chunked = False
    for name, value in request.headers.raw:
        lines.append(name + b": " + value)
        if len(name) == 10 and name.lower() == b"connection":
            keep_alive = b"close" not in value.lower()
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            chunked = value.lower().rstrip().endswith(b"chunked")
    lines.append(b"")
    lines.append(b"")
    head = b"\r\n".join(lines)
    breaks = len(lines) - 1
    if head.count(b"\n") != breaks or head.count(b"\r") != breaks:
        raise httpx.LocalProtocolError("a header contains a line break", request=request)
    if chunked:
        if body:
            return head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n", keep_alive
        return head + b"0\r\n\r\n", keep_alive
    return head + body, keep_alive


def _may_be_stale(conn: Connection) -> bool:
    """A failure that a server closing an idle keep-alive connection would cause."""
    failure = conn.failure
    return failure is not None and failure[0] in (
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
    )
