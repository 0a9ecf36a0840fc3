"""One HTTP/1.1 connection for `AsyncioTransport`: an asyncio protocol fed to httptools (llhttp).

* the request line, the headers (httpx already put Host and Content-Length in them) and the body
  go out in ONE `transport.write()`; there is no writer task;
* the response is parsed in `data_received`; the head is handed over as soon as it is complete,
  and each read of the body stream takes all the body bytes that have arrived (chunked framing
  removed by the parser) as one `bytes`;
* flow control: above `HIGH_WATER` unread body bytes the socket stops being read
  (`pause_reading`), so a caller that stops reading never makes the gateway buffer the rest of
  an upstream body;
* the read timeout (the longest silence allowed while waiting for the head or the next body
  piece) is one loop timer per connection, re-armed lazily from the time of the last read.

Failures are recorded as httpx exception classes and raised by whoever waits on the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Final, cast

import httptools
import httpx

if TYPE_CHECKING:
    from aura_agent.adapters.http_client.pool import ConnectionPool

__all__ = ["BODY_CUT", "NO_RESPONSE", "Connection", "Failure", "Key", "ResponseStream"]

HIGH_WATER: Final = 64 * 1024
"""Unread body bytes above which the socket is no longer read."""

HEAD_LIMIT: Final = 100 * 1024
"""The most bytes a status line and headers may take (llhttp itself has no limit)."""

_TIMER_SLACK: Final = 0.001  # loop timers may fire this much before their time

Key = tuple[str, str, int]
"""(scheme, host, port): what a pooled connection may be reused for."""

# What a failed connection raises: the httpx class and its message (the request is added when
# raised).
Failure = tuple[type[httpx.TransportError], str]
NO_RESPONSE: Final[Failure] = (
    httpx.RemoteProtocolError,
    "Server disconnected without sending a response.",
)
BODY_CUT: Final[Failure] = (
    httpx.RemoteProtocolError,
    "peer closed connection without sending complete message body",
)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: the asyncio protocol and the httptools parser's callbacks.

    It serves one exchange at a time. Between `start()` and the end of the response it is owned
    by that request (then by its response stream); otherwise it sits idle in its pool.
    """

    def __init__(self, owner: ConnectionPool, key: Key) -> None:
        self._owner = owner
        self.key = key
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle = False
        self.idle_since = 0.0
        self.counted = False  # holds one of the pool's slots (from `_connect` to `forget`)
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
        self.failure: Failure | None = None
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
            if self._head_bytes > HEAD_LIMIT:  # llhttp itself would read headers without end
                self._fail((httpx.RemoteProtocolError, "the response head is too large"), None)
        if self.buffered > HIGH_WATER and not self.paused and not self.closed:
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
                self.failure = NO_RESPONSE
            elif self._ends_at_close():
                self.complete = True  # a body delimited by the connection's end
                self.keep_alive = False
            else:
                self.failure = BODY_CUT
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()
        self._owner.forget(self)

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
            self.failure = NO_RESPONSE
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
        self._owner.forget(self)

    # -- internals --------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, failure: Failure, cause: BaseException | None) -> None:
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


class ResponseStream(httpx.AsyncByteStream):
    """The body as it arrives; closing it early closes the connection (no reuse mid-body).

    Its own async iterator: each read is one `__anext__`, with no generator in between.
    """

    __slots__ = ("_conn", "_request")

    def __init__(self, conn: Connection, request: httpx.Request) -> None:
        self._conn: Connection | None = conn
        self._request = request

    def __aiter__(self) -> ResponseStream:
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
                conn._owner.release(conn)
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
            conn._owner.release(conn)  # the whole response arrived: the connection is reusable
        else:
            conn.close()  # cut short: the upstream must stop now
