"""An httpx transport on plain asyncio protocols and httptools: HTTP/1.1 and nothing else.

The relay sends one streaming POST per chat turn and reads tokens back; aiohttp's request
machinery (request objects, auto headers, tracing, cookie filtering, and on Python 3.11 a body
writer task that costs a loop iteration before the provider sees the body) was about a third of
the gateway's CPU per stream. This transport does only what the relay needs:

* the request line, the headers (httpx already put Host and Content-Length in them) and the body
  go out in ONE `transport.write()`; there is no writer task;
* the response is parsed by httptools (llhttp) in `data_received`; the `httpx.Response` is
  returned as soon as its headers are complete, and its body stream hands over, per read, all
  the body bytes that have arrived (chunked framing removed by the parser) in one `bytes`;
* flow control: above `_HIGH_WATER` unread body bytes the socket stops being read
  (`pause_reading`), so a caller that stops reading never makes the gateway buffer the rest of
  an upstream body;
* the read timeout (the longest silence allowed while waiting for the headers or the next body
  piece) is one loop timer per connection, re-armed lazily from the time of the last read;
* a pool per (scheme, host, port): idle connections are reused last-in first-out and dropped
  after `keepalive_expiry`; `max_connections` caps the total (waiters get a connection as one
  frees, or `httpx.PoolTimeout`); a reused connection that fails before any response byte (the
  server closed it while it was idle) is retried once on a new connection.

No cookies, redirects, proxies or decompression: httpx decodes by Content-Encoding, and the
adapters send `Accept-Encoding: identity`. Deployments behind an egress proxy use
`UPSTREAM_TRANSPORT=httpx`. Failures raise httpx's exceptions, as the other transports do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from typing import Final, cast

import httptools
import httpx

__all__ = ["AsyncioTransport"]

_HIGH_WATER: Final = 64 * 1024
"""Unread body bytes above which the socket is no longer read."""

_HEAD_LIMIT: Final = 100 * 1024
"""The most bytes a status line and headers may take (llhttp itself has no limit)."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_TIMER_SLACK: Final = 0.001  # loop timers may fire this much before their time

_Key = tuple[str, str, int]

# What a failed connection raises: the httpx class and its message (the request is added when
# raised). `_STALE` marks the failures that may mean "closed while idle" on a reused connection.
_Failure = tuple[type[httpx.TransportError], str]
_NO_RESPONSE: Final[_Failure] = (
    httpx.RemoteProtocolError,
    "Server disconnected without sending a response.",
)
_BODY_CUT: Final[_Failure] = (
    httpx.RemoteProtocolError,
    "peer closed connection without sending complete message body",
)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: the asyncio protocol and the httptools parser's callbacks.

    It serves one exchange at a time. Between `start()` and the end of the response it is owned
    by that request (then by its response stream); otherwise it sits idle in its pool.
    """

    def __init__(self, owner: AsyncioTransport, key: _Key) -> None:
        self._owner = owner
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle = False
        self.idle_since = 0.0
        self.counted = False  # holds one of the pool's slots (from `_connect` to `_forget`)
        self.exchanges = 0  # requests started on this connection
        # the current exchange
        self.active = False
        self.keep_alive = True
        self.got_bytes = False
        self.head_done = False
        self.complete = False
        self.interim = False  # parsing a 1xx response, which is skipped
        self.status = 0
        self._head_bytes = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.failure: _Failure | None = None
        self.failure_cause: BaseException | None = None
        # waiting and the read timeout
        self.waiter: asyncio.Future[None] | None = None
        self._progress = False
        self.read_timeout: float | None = None
        self._last_read = 0.0
        self._wait_started = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement `asyncio.Transport` without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes nobody asked for: the connection is not reusable
            self.close()
            return
        self._last_read = self._loop.time()
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail((httpx.RemoteProtocolError, "unexpected protocol upgrade"), None)
        except httptools.HttpParserError as exc:
            cause = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else exc
            self._fail((httpx.RemoteProtocolError, f"invalid HTTP response: {exc}"), cause)
        if not self.head_done and not self.closed:
            self._head_bytes += len(data)
            if self._head_bytes > _HEAD_LIMIT:  # llhttp itself would read headers without end
                self._fail((httpx.RemoteProtocolError, "the response head is too large"), None)
        if self.buffered > _HIGH_WATER and not self.paused and not self.closed:
            assert self.transport is not None
            self.paused = True
            self.transport.pause_reading()
        if self._progress:
            self._progress = False
            self._wake()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; `connection_lost` ends the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.active and not self.complete and self.failure is None:
            if exc is not None:
                self.failure = (httpx.ReadError, str(exc) or type(exc).__name__)
                self.failure_cause = exc
            elif not self.head_done:
                self.failure = _NO_RESPONSE
            elif self._ends_at_close():
                self.complete = True  # a body delimited by the connection's end
                self.keep_alive = False
            else:
                self.failure = _BODY_CUT
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()
        self._owner._forget(self)

    # -- httptools callbacks ----------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        if self.complete:  # a second response to one request: the parser stops, we hang up
            raise httptools.HttpParserError("unexpected data after the response")
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim response (100 Continue, 103 Early Hints): skip it
            self.interim = True
            self.headers = []
            self.reason = b""
            return
        self.status = status
        self.head_done = True
        self._progress = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._progress = True

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self.keep_alive = self.keep_alive and self._parser.should_keep_alive()
        self._progress = True

    # -- the exchange -----------------------------------------------------------------------------

    def start(self, data: bytes, read_timeout: float | None, keep_alive: bool) -> None:
        """Send one request (all of it, in one write) and get ready for its response."""
        self.active = True
        self.idle = False
        self.exchanges += 1
        self.keep_alive = keep_alive
        self.got_bytes = self.head_done = self.complete = self.interim = False
        self.status = 0
        self._head_bytes = 0
        self.reason = b""
        self.headers = []
        self.chunks = []
        self.buffered = 0
        self.failure = None
        self.failure_cause = None
        if read_timeout != self.read_timeout and self._timer is not None:
            self._timer.cancel()  # armed for another timeout; the next wait re-arms it
            self._timer = None
        self.read_timeout = read_timeout
        transport = self.transport
        if transport is None or transport.is_closing():
            self.failure = _NO_RESPONSE
            return
        try:
            transport.write(data)
        except (OSError, RuntimeError) as exc:
            self.failure = (httpx.WriteError, str(exc) or type(exc).__name__)
            self.failure_cause = exc
            self.close()

    def wait(self) -> asyncio.Future[None]:
        """A future resolved at the next progress (or failure); arms the read timeout."""
        loop = self._loop
        waiter = loop.create_future()
        self.waiter = waiter
        timeout = self.read_timeout
        if timeout is not None:
            self._wait_started = now = loop.time()
            if self._timer is None:
                self._timer = loop.call_at(now + timeout, self._on_timer)
        return waiter

    def take(self) -> bytes:
        """All the body bytes that arrived and were not read yet; reading resumes if paused."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused:
            self.paused = False
            if self.transport is not None and not self.closed:
                self.transport.resume_reading()
        return data

    def error(self, request: httpx.Request) -> httpx.TransportError:
        assert self.failure is not None
        kind, message = self.failure
        exc = kind(message, request=request)
        exc.__cause__ = self.failure_cause
        return exc

    def close(self) -> None:
        """Hang up now (a response cut short, a failure); the slot is given back at once."""
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner._forget(self)

    # -- internals --------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, failure: _Failure, cause: BaseException | None) -> None:
        if self.failure is None and not self.complete:
            self.failure = failure
            self.failure_cause = cause
        self._progress = True
        self.close()

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self.waiter
        timeout = self.read_timeout
        if waiter is None or waiter.done() or timeout is None or self.closed:
            return  # nobody is waiting: the next wait re-arms it
        deadline = max(self._last_read, self._wait_started) + timeout
        if self._loop.time() + _TIMER_SLACK >= deadline:
            self.failure = (httpx.ReadTimeout, "timed out waiting for the upstream")
            self.close()
            self._wake()
        else:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _ends_at_close(self) -> bool:
        """Whether the response's body is delimited by the end of the connection."""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and value.lower().rstrip().endswith(b"chunked"):
                return False
        return True


class _ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives; closing it early closes the connection (no reuse mid-body).

    Its own async iterator: each read is one `__anext__`, with no generator in between.
    """

    __slots__ = ("_conn", "_request")

    def __init__(self, conn: _Connection, request: httpx.Request) -> None:
        self._conn: _Connection | None = conn
        self._request = request

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        while True:
            conn = self._conn
            if conn is None:
                raise StopAsyncIteration
            if conn.chunks:
                return conn.take()
            if conn.complete:
                self._conn = None
                conn._owner._release(conn)
                raise StopAsyncIteration
            if conn.failure is not None:
                self._conn = None
                conn.close()
                raise conn.error(self._request)
            await conn.wait()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete and conn.failure is None:
            conn._owner._release(conn)  # the whole response arrived: the connection is reusable
        else:
            conn.close()  # cut short: the upstream must stop now


class AsyncioTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncClient(transport=AsyncioTransport(...))`; see the module docstring."""

    def __init__(
        self, *, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        limits = limits or httpx.Limits()
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[_Key, deque[_Connection]] = {}
        self._idle_count = 0
        self._total = 0  # connections holding a slot: connecting, busy or idle
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._closing = False

    # -- the request ------------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; the response is returned with its body still streaming."""
        if self._closing:
            raise RuntimeError("The transport is closed.")
        key = _key(request)
        data, keep_alive = await _serialized(request)
        timeouts = request.extensions.get("timeout") or {}
        read_timeout = timeouts.get("read")
        fresh = False
        while True:
            conn = await self._acquire(key, timeouts, fresh=fresh, request=request)
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
            stream=_ResponseStream(conn, request),
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection; busy ones close when their responses end."""
        self._closing = True
        for idle in list(self._idle.values()):
            while idle:
                idle.pop().close()
        self._idle.clear()
        self._idle_count = 0
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it sees `_closing` and fails

    def connection_counts(self) -> tuple[int, int]:
        """(connections in use, connections open), for tests and diagnostics."""
        return self._total - self._idle_count, self._total

    # -- the pool ---------------------------------------------------------------------------------

    async def _acquire(
        self,
        key: _Key,
        timeouts: dict[str, float | None],
        *,
        fresh: bool,
        request: httpx.Request,
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        if not fresh and (conn := self._reusable(key, loop.time())) is not None:
            return conn
        if self._max_connections is not None and self._total >= self._max_connections:
            await self._wait_for_slot(key, timeouts.get("pool"), request, fresh=fresh)
            if not fresh and (conn := self._reusable(key, loop.time())) is not None:
                return conn
        return await self._connect(key, timeouts.get("connect"), request)

    def _reusable(self, key: _Key, now: float) -> _Connection | None:
        """The most recently used live idle connection to `key`, if any (expired ones close)."""
        idle = self._idle.get(key)
        expiry = self._expiry
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            conn.idle = False
            if conn.closed or (expiry is not None and now - conn.idle_since >= expiry):
                conn.close()
                continue
            transport = conn.transport
            if transport is None or transport.is_closing():
                conn.close()
                continue
            return conn
        return None

    async def _wait_for_slot(
        self, key: _Key, pool_timeout: float | None, request: httpx.Request, *, fresh: bool
    ) -> None:
        """Until a slot is free (or a connection to `key` goes idle); `httpx.PoolTimeout` if not."""
        max_connections = self._max_connections
        assert max_connections is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(pool_timeout):
                while self._total >= max_connections:
                    if self._closing:
                        raise RuntimeError("The transport is closed.")
                    if not fresh and self._idle.get(key):
                        return
                    if self._close_oldest_idle():
                        continue
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._slot_waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._notify_slot()  # woken but leaving: pass the turn on
                        else:
                            waiter.cancel()
                        raise
        except TimeoutError:
            raise httpx.PoolTimeout("timed out waiting for a connection", request=request) from None

    def _close_oldest_idle(self) -> bool:
        """Free a slot held by an idle connection (any host); False if none is idle."""
        oldest: _Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        oldest.close()
        return True

    async def _connect(
        self, key: _Key, connect_timeout: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if scheme == "https" else None
        self._total += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, key),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except BaseException as exc:
            self._total -= 1
            self._notify_slot()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout("timed out connecting", request=request) from exc
            if isinstance(exc, OSError):
                message = str(exc) or type(exc).__name__
                raise httpx.ConnectError(message, request=request) from exc
            raise
        conn.counted = True  # the slot taken above is the connection's now
        if conn.closed:  # lost before this task ran again
            self._forget(conn)
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # loading the CA bundle takes a while: once
        return self._ssl

    def _release(self, conn: _Connection) -> None:
        """A response read to its end: keep its connection for the next request, or close it."""
        conn.active = False
        if (
            conn.closed
            or not conn.keep_alive
            or self._closing
            or (self._max_idle is not None and self._idle_count >= self._max_idle)
        ):
            conn.close()
            return
        now = asyncio.get_running_loop().time()
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = deque()
        expiry = self._expiry
        while expiry is not None and idle and now - idle[0].idle_since >= expiry:
            stale = idle.popleft()
            self._idle_count -= 1
            stale.idle = False
            stale.close()
        conn.idle = True
        conn.idle_since = now
        idle.append(conn)
        self._idle_count += 1
        self._notify_slot()

    def _forget(self, conn: _Connection) -> None:
        """Give back the connection's slot (once): it is closed, by either side."""
        if conn.counted:
            conn.counted = False
            if conn.idle:
                conn.idle = False
                idle = self._idle.get(conn.key)
                if idle is not None:
                    with contextlib.suppress(ValueError):
                        idle.remove(conn)
                        self._idle_count -= 1
            self._total -= 1
            self._notify_slot()

    def _notify_slot(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _key(request: httpx.Request) -> _Key:
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


def _may_be_stale(conn: _Connection) -> bool:
    """A failure that a server closing an idle keep-alive connection would cause."""
    failure = conn.failure
    return failure is not None and failure[0] in (
        httpx.RemoteProtocolError,
        httpx.ReadError,
        httpx.WriteError,
    )
