"""The HTTP/1.1 plumbing of the loopback fakes: reading requests, framing responses.

Bare asyncio streams, our own read buffer and precomputed response bytes: the fakes must never
be the bottleneck of a benchmark of the gateway in front of them, and they must speak the wire
protocol over real sockets (keep-alive, chunked bodies, `Expect: 100-continue`, a client that
leaves), which a transport-level mock cannot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Final, TypeVar

__all__ = [
    "CONTINUE",
    "DRAIN_ABOVE",
    "READ_SIZE",
    "SSE_HEADERS",
    "TERMINATOR",
    "BadRequestError",
    "Connection",
    "forever",
    "json_response",
    "parse_head",
    "read_body",
    "reason_phrase",
    "response_head",
    "same",
    "send_frames",
    "send_paced",
    "sse_chunk",
]

T = TypeVar("T")

READ_SIZE: Final = 64 * 1024
_MAX_HEAD: Final = 64 * 1024
_MAX_BODY: Final = 16 * 1024 * 1024
_MAX_PIPELINED: Final = 1024 * 1024
DRAIN_ABOVE: Final = 64 * 1024
"""Write-buffer size above which a paced writer waits for the socket to drain."""

TERMINATOR: Final = b"0\r\n\r\n"
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
SSE_HEADERS: Final = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Transfer-Encoding", "chunked"),
)


class BadRequestError(Exception):
    """A request the server refuses to parse; the connection is answered and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Connection:
    """Our own read buffer over a StreamReader, so bytes read while watching for EOF are kept."""

    __slots__ = ("buf", "id", "reader", "writer")

    def __init__(
        self, conn_id: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.id = conn_id
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    async def _fill(self) -> None:
        data = await self.reader.read(READ_SIZE)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self.buf), None)
        self.buf += data

    async def read_head(self) -> bytes | None:
        """The request head minus its final CRLFCRLF; None on a clean close between requests."""
        scanned = 0
        while True:
            while self.buf.startswith(b"\r\n"):  # RFC 9112 2.2: ignore stray CRLFs between requests
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n", max(0, scanned - 3))
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > _MAX_HEAD:
                raise BadRequestError(431, "Request header fields too large")
            scanned = len(self.buf)
            data = await self.reader.read(READ_SIZE)
            if not data:
                return None
            self.buf += data

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > _MAX_HEAD:
                raise BadRequestError(400, "Line too long")
            await self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    async def read_chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            size_field = (await self.read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise BadRequestError(400, "Bad chunk size") from None
            if size == 0:
                while await self.read_line():  # trailer fields, ignored
                    pass
                return bytes(body)
            if len(body) + size > _MAX_BODY:
                raise BadRequestError(413, "Body too large")
            body += await self.read_exactly(size)
            if await self.read_exactly(2) != b"\r\n":
                raise BadRequestError(400, "Bad chunk framing")

    async def wait_client_gone(self) -> None:
        """Return once the peer closes; pipelined bytes read meanwhile stay in ``buf``."""
        try:
            while len(self.buf) <= _MAX_PIPELINED:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    return
                self.buf += data
        except ConnectionError:
            return
        await forever()  # a client flooding us while we reply: stop reading, keep replying


def parse_head(head: bytes) -> tuple[str, str, dict[str, str], bool]:
    """Method, target, lower-cased headers and whether the client wants keep-alive."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequestError(400, "Malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequestError(400, "Malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return method, target, headers, keep_alive


async def read_body(conn: Connection, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await conn.read_chunked_body()
    length = headers.get("content-length", "0").strip()
    if not length.isdigit():
        raise BadRequestError(400, "Bad Content-Length")
    if int(length) > _MAX_BODY:
        raise BadRequestError(413, "Body too large")
    return await conn.read_exactly(int(length))


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(status: int, headers: Iterable[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(
    status: int, body: bytes, keep_alive: bool, extra: Iterable[tuple[str, str]] = ()
) -> bytes:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return response_head(status, headers, keep_alive) + body


def sse_chunk(data: bytes) -> bytes:
    """One SSE ``data:`` event wrapped in one HTTP/1.1 chunk."""
    event = b"data: " + data + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(event), event)


async def send_paced(
    writer: asyncio.StreamWriter, frame: Callable[[T], bytes], tokens: Sequence[T], delay: float
) -> None:
    """One write per token, ``delay`` seconds apart, like a real model producing text."""
    transport = writer.transport
    for i, token in enumerate(tokens):
        if i:
            await asyncio.sleep(delay)
        if transport.is_closing():
            raise ConnectionResetError("client connection lost")
        writer.write(frame(token))
        if transport.get_write_buffer_size() > DRAIN_ABOVE:
            await writer.drain()


async def send_frames(
    writer: asyncio.StreamWriter, frame: Callable[[T], bytes], items: Sequence[T], delay: float
) -> bytes:
    """Paced writes when ``delay > 0`` (then returns ``b""``), else all frames joined, for the
    caller to write with what follows: same bytes on the wire, one syscall instead of many."""
    if delay > 0:
        await send_paced(writer, frame, items, delay)
        return b""
    return b"".join([frame(item) for item in items])


def same(frame: bytes) -> bytes:
    """The frame function for items that are already frames."""
    return frame


async def forever() -> None:
    await asyncio.get_running_loop().create_future()
