"""An httpx transport on aiohttp's connection pool: httpx stays the client API, aiohttp moves bytes.

Measured on the relay benchmark (README, Performance): httpcore's pool rescans every pooled
connection (with several socket probes each) on every request and every release, which made it
the largest cost of the whole gateway under 50+ concurrent streams. aiohttp's pool is O(1) per
request. Exceptions are mapped to httpx's, so the adapters' error handling is the same with
either transport.

Per request it does as little as it can: parsed URLs and timeout objects are cached (a gateway
talks to a handful of endpoints with one timeout policy), headers are decoded in one pass, and
the body is read with one `readany()` per network read, with no generator in between.
"""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport"]


def _mapped(exc: BaseException, request: httpx.Request, *, connecting: bool) -> httpx.HTTPError:
    """The httpx exception with the same meaning as an aiohttp (or asyncio) failure."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        timeout = httpx.ConnectTimeout if connecting else httpx.ReadTimeout
        return timeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        if connecting:
            return httpx.ConnectError(message, request=request)
        return httpx.ReadError(message, request=request)
    return httpx.TransportError(message, request=request)


_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


@lru_cache(maxsize=64)
def _url(text: str) -> yarl.URL:
    """The parsed URL; bounded, since URLs come from the routes (and the odd probe)."""
    try:
        return yarl.URL(text)
    except ValueError as exc:  # as aiohttp itself reports a URL it cannot parse
        raise aiohttp.InvalidUrlClientError(text) from exc


@lru_cache(maxsize=16)
def _timeout(
    pool: float | None, connect: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's; there is normally one policy (plus the probe's)."""
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


class _ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives; closing it early closes the connection (no reuse mid-body).

    Its own async iterator (not a generator over `iter_any()`): each chunk costs one `readany()`.
    """

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._content = response.content
        self._request = request

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._content.readany()
        except aiohttp.EofStream:
            raise StopAsyncIteration from None
        except _FAILURES as exc:
            raise _mapped(exc, self._request, connecting=False) from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # fully read: the connection goes back to the pool
        else:
            self._response.close()  # cut short: the upstream must stop now


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AiohttpTransport(...))`; the session is made on first use."""

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or 15.0,
                ssl=self._ssl,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # not True: aiohttp would then re-read ~/.netrc and the proxy variables on every
                # request; deployments behind an egress proxy use UPSTREAM_TRANSPORT=httpx
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # shared by every tenant: keep no cookies
                auto_decompress=False,  # httpx decodes by Content-Encoding, as usual
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; the body streams from the returned response."""
        timeouts = request.extensions.get("timeout", {})
        timeout = _timeout(timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))
        headers = request.headers
        encoding = headers.encoding  # as `multi_items()` decodes, without its per-item lookups
        try:
            response = await self._session_now().request(
                request.method,
                _url(str(request.url)),
                headers=[
                    (key.decode(encoding), value.decode(encoding)) for key, value in headers.raw
                ],
                data=request.content or None,
                allow_redirects=False,
                timeout=timeout,
            )
        except _FAILURES as exc:
            raise _mapped(exc, request, connecting=True) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
