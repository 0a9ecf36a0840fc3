"""The connection pool behind `AsyncioTransport`: one per transport, keyed by (scheme, host, port).

Idle connections are reused last-in first-out (the warmest socket first) and dropped after
`keepalive_expiry`; `max_connections` caps the total over every host (waiters get a connection
as one frees, or `httpx.PoolTimeout`), and at the cap an idle connection to another host is
closed to make room. A connection gives its slot back itself when it closes (`forget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque

import httpx

from aura_agent.adapters.http_client.connection import Connection, Key

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Connections to every upstream, their slots under `limits`, and the TLS context."""

    def __init__(self, limits: httpx.Limits, ssl_context: ssl.SSLContext | None) -> None:
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Key, deque[Connection]] = {}
        self._idle_count = 0
        self._total = 0  # connections holding a slot: connecting, busy or idle
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self.closing = False

    async def aclose(self) -> None:
        """Close every pooled connection; busy ones close when their responses end."""
        self.closing = True
        for idle in list(self._idle.values()):
            while idle:
                idle.pop().close()
        self._idle.clear()
        self._idle_count = 0
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it sees `closing` and fails

    def connection_counts(self) -> tuple[int, int]:
        """(connections in use, connections open)."""
        return self._total - self._idle_count, self._total

    async def acquire(
        self,
        key: Key,
        timeouts: dict[str, float | None],
        *,
        fresh: bool,
        request: httpx.Request,
    ) -> Connection:
        """A connection to `key`: an idle one unless `fresh`, else a new one once a slot frees."""
        loop = asyncio.get_running_loop()
        if not fresh and (conn := self._reusable(key, loop.time())) is not None:
            return conn
        if self._max_connections is not None and self._total >= self._max_connections:
            await self._wait_for_slot(key, timeouts.get("pool"), request, fresh=fresh)
            if not fresh and (conn := self._reusable(key, loop.time())) is not None:
                return conn
        return await self._connect(key, timeouts.get("connect"), request)

    def _reusable(self, key: Key, now: float) -> Connection | None:
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
        self, key: Key, pool_timeout: float | None, request: httpx.Request, *, fresh: bool
    ) -> None:
        """Until a slot is free (or a connection to `key` goes idle); `httpx.PoolTimeout` if not."""
        max_connections = self._max_connections
        assert max_connections is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(pool_timeout):
                while self._total >= max_connections:
                    if self.closing:
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
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        oldest.close()
        return True

    async def _connect(
        self, key: Key, connect_timeout: float | None, request: httpx.Request
    ) -> Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if scheme == "https" else None
        self._total += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, key),
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
            self.forget(conn)
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # loading the CA bundle takes a while: once
        return self._ssl

    def release(self, conn: Connection) -> None:
        """A response read to its end: keep its connection for the next request, or close it."""
        conn.active = False
        if (
            conn.closed
            or not conn.keep_alive
            or self.closing
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

    def forget(self, conn: Connection) -> None:
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
