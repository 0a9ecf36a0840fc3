"""uvicorn with a graceful drain: on SIGTERM nothing finished is lost and nothing is cut mid-word.

uvicorn's own shutdown stops accepting, waits up to `timeout_graceful_shutdown` and then cancels
whatever still runs: a stream would just stop, with no `event: error` for its client. The
`DrainingServer` runs the drain first:

1. stop accepting connections; idle keep-alive connections close, busy ones close after their
   response;
2. let in-flight streams finish for up to SHUTDOWN_GRACE_SECONDS (their turns are saved);
3. end the rest with `event: error` "the server is shutting down; please retry" (unsaved);
4. uvicorn's shutdown: wait for those last writes (briefly), close the app (lifespan), exit 0.

uvicorn's httptools protocol reads a request head of any size into memory; `HeadLimitedProtocol`
answers `431 Request Header Fields Too Large` beyond MAX_HEADER_BYTES and closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import multiprocess

from aura_agent.http.sse.control import FINAL_WRITE_SECONDS, drain_streams

# After the drain, how long uvicorn waits for the interrupted streams' last writes before it
# cancels what is left (a client that stopped reading).
BACKSTOP_SECONDS = int(FINAL_WRITE_SECONDS) + 3


# Allocations (minus frees) between young collections; CPython's default is 700.
_YOUNG_COLLECTION_THRESHOLD = 20_000

# How long a refused connection keeps reading (and dropping) what the client still sends, so that
# closing it does not reset the connection before the client has read the 431.
LINGER_SECONDS = 2.0

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/problem+json\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n"
)
_TOO_LARGE_BODY = (
    b'{"type":"about:blank","title":"Request Header Fields Too Large","status":431,'
    b'"detail":"the request line and headers exceed MAX_HEADER_BYTES"}'
)


class _HeadTooLargeError(Exception):
    """Raised from a parser callback: the head being parsed is over the limit."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the size of a request's line and headers.

    The limit is uvicorn's `h11_max_incomplete_event_size` (the same knob h11 uses for this), so
    it reaches `--workers` processes with the pickled config. Two counts enforce it: the exact
    size of the URL and headers as the parser reports them, and the raw bytes received while a
    head is still incomplete (the parser buffers a header until it ends, so this bounds memory).
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._max_head = config.h11_max_incomplete_event_size or 32_768
        self._in_head = False
        self._head_bytes = 0
        self._received_in_head = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a 431: drop whatever the client still sends
        super().data_received(data)
        if self._in_head:  # (a 431 answered from a callback has ended the head)
            self._received_in_head += len(data)
            if self._received_in_head > self._max_head:
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._received_in_head = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # A callback's exception surfaces as a parser error, which uvicorn answers with a 400.
        if self._refused:
            self._answer_431()
            return
        super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._max_head:
            self._refused = True
            raise _HeadTooLargeError

    def _refuse(self) -> None:
        self._refused = True
        self._answer_431()

    def _answer_431(self) -> None:
        self._in_head = False
        self.logger.warning("Request head larger than %d bytes refused (431).", self._max_head)
        self.transport.write(_TOO_LARGE % len(_TOO_LARGE_BODY) + _TOO_LARGE_BODY)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


def freeze_startup_heap() -> None:
    """Collect less, and never what startup built (modules, the app, its routes).

    A full collection walks every tracked object, and no token moves while it runs; young
    collections at the default threshold mostly scan per-request objects that reference
    counting frees anyway (figures in the README's Performance section). Frozen objects are
    never collected, so this runs once per server process, after startup, never in tests that
    build many apps.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, 20, 20)


def _ignore(_: int, __: FrameType | None) -> None:
    """The handler uvicorn 'restores' and re-raises SIGTERM into once it has shut down."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose shutdown drains the app's streams first (see the module doc)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_startup_heap()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await drain_streams()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, except that a SIGTERM shutdown ends the process with status 0.

        uvicorn re-raises the signal it shut down for, so the process would die "killed by
        SIGTERM" after a clean drain; orchestrators and scripts read that as a failure.
        """
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _ignore)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGTERM, previous)


class _DrainingWorker(multiprocess.Process):
    """A `--workers` child process that runs a `DrainingServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def run(config: uvicorn.Config) -> int:
    """Serve until SIGTERM/SIGINT; the exit status: 0, or uvicorn's 3 if startup failed."""
    if config.workers > 1:
        # The supervisor builds its workers by this module-level name; each worker drains its
        # own streams when the supervisor passes SIGTERM on.
        multiprocess.Process = _DrainingWorker  # type: ignore[misc]
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    server = DrainingServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE
