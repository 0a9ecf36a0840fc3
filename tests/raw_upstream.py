"""A tiny raw-socket upstream on loopback, for the faults `FakeOpenRouter` cannot produce.

Every connection gets the same `RawReply`: optionally read the HTTP request, write some bytes
verbatim (a status line and headers, SSE events, or garbage), then close, reset (RST) or stall
until the client leaves. It records how many connections it saw, how many are still open and
when a stalled client went away, so tests can check the gateway hangs up.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

import msgspec

__all__ = [
    "SSE_HEAD",
    "RawReply",
    "RawUpstream",
    "chunk_event",
    "finish_event",
    "token_event",
]

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"\r\n"
)
"""A streamed 200 whose body ends when the connection closes (no length, not chunked)."""

_HEAD_LIMIT = 64 * 1024
_READ_TIMEOUT = 5.0
_STALL_LIMIT = 30.0  # a stalled connection is closed after this long, whatever the client does

Then = Literal["close", "reset", "stall"]


def chunk_event(payload: object) -> bytes:
    """One SSE event carrying `payload` as JSON."""
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


def token_event(text: str) -> bytes:
    """A Chat Completions chunk carrying one token."""
    return chunk_event({"choices": [{"index": 0, "delta": {"content": text}}]})


def finish_event(reason: str = "stop") -> bytes:
    """The chunk that finishes a reply."""
    return chunk_event({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})


@dataclass(frozen=True, slots=True)
class RawReply:
    """What every connection gets.

    `read_request=False` acts on the connection as soon as it is accepted. `writes` are sent in
    order, each followed by `pause` seconds (so the client has read them before what follows).
    Then the connection is closed (`close`: FIN), reset (`reset`:
    RST, through SO_LINGER 0) or kept open without a byte more until the client leaves (`stall`).
    """

    read_request: bool = True
    writes: Sequence[bytes] = ()
    pause: float = 0.0
    then: Then = "close"


@dataclass(slots=True)
class RawUpstream:
    """A loopback TCP server answering every connection with `reply`; use `async with`."""

    reply: RawReply
    host: str = "127.0.0.1"
    accepted: int = 0
    open_connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    client_left_at: list[float] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None, "RawUpstream is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """A base URL in OpenRouter's shape; the path is ignored anyway."""
        return f"http://{self.host}:{self.port}/api/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.open_connections += 1
        reply = self.reply
        try:
            if reply.read_request:
                self.requests.append(await asyncio.wait_for(_read_request(reader), _READ_TIMEOUT))
            for data in reply.writes:
                writer.write(data)
                await writer.drain()
                if reply.pause:
                    await asyncio.sleep(reply.pause)
            if reply.then == "stall":
                await _wait_client_gone(reader)
                self.client_left_at.append(time.monotonic())
            elif reply.then == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            if not writer.transport.is_closing():
                writer.close()
            self.open_connections -= 1
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """The request head and its Content-Length body (the gateway never sends chunked bodies)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _HEAD_LIMIT:
        raise ConnectionError("request head too large")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


async def _wait_client_gone(reader: asyncio.StreamReader) -> None:
    async with asyncio.timeout(_STALL_LIMIT):
        while await reader.read(64 * 1024):
            pass
