"""A real OpenRouter look-alike HTTP/1.1 server on loopback, for end-to-end tests and benchmarks.

Transport-level mocks cannot catch bugs in connection handling (keep-alive, chunked framing,
timeouts, propagating a client's disconnect upstream). This server speaks the wire protocol over
real sockets so those paths run for real, and it records what it saw (including *when* a client
went away). It is built on bare ``asyncio`` streams with replies precomputed per request, so it is
not the bottleneck when benchmarking the gateway in front of it.

In-process::

    async with FakeOpenRouter() as fake:
        fake.enqueue(Script(tokens=["Hi", "!"], token_delay=0.01))
        ...  # point the gateway at fake.base_url

As a process (prints ``FAKE_OPENROUTER_READY <chat url>`` once listening)::

    python -m aura_agent.testing.fake_openrouter --port 9100 --tokens 64 --token-delay-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self

import msgspec

__all__ = ["FakeOpenRouter", "RecordedRequest", "Script", "main"]

_READ_SIZE = 64 * 1024
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_MAX_PIPELINED = 1024 * 1024
_DRAIN_ABOVE = 64 * 1024
_DEFAULT_MODEL = "openrouter/auto"

_WORD = re.compile(r"\S+\s*")
_TERMINATOR = b"0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SSE_HEADERS = (
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("Transfer-Encoding", "chunked"),
)


class Script(msgspec.Struct, kw_only=True, frozen=True):
    """How the fake answers one chat request; every field defaults to a healthy streamed reply.

    - ``tokens=None`` echoes the last user message (``"Echo: " + text`` split into word tokens
      keeping their trailing spaces), so tests get request-dependent output without scripting.
    - Delays are seconds: ``first_token_delay`` before the first token (and before an error
      response), ``token_delay`` between tokens, each token then being its own write. Without
      ``token_delay`` all tokens go out in one write: same bytes, far fewer syscalls.
    - ``status != 200`` answers ``{"error": {"code", "message"}}`` instead of a stream;
      ``headers`` go on every response (e.g. ``Retry-After``).
    - ``in_band_error`` is sent after the tokens as a ``data:`` event carrying ``"error"``
      (OpenRouter's mid-stream error shape, ``finish_reason: "error"``); the stream then ends
      without finish, usage or ``[DONE]``, as OpenRouter's does.
    - ``drop_after_tokens`` closes the socket right after the tokens (no terminating chunk).
    - ``stall`` sends the stream headers, then nothing until the client leaves (for non-stream
      requests: nothing at all).
    - ``comments_while_waiting`` sends ``: OPENROUTER PROCESSING`` at once and then every that
      many seconds during ``first_token_delay``.

    Non-stream requests use ``tokens``, the delays, ``status``, ``error_message``, ``headers``,
    ``finish_reason``, ``usage``, ``stall`` and ``drop_after_tokens`` only.
    """

    tokens: list[str] | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    status: int = 200
    error_message: str | None = None
    headers: dict[str, str] = {}
    in_band_error: dict[str, Any] | None = None
    finish_reason: str = "stop"
    usage: bool = True
    send_done: bool = True
    drop_after_tokens: bool = False
    stall: bool = False
    comments_while_waiting: float | None = None


@dataclass(slots=True, eq=False)
class RecordedRequest:
    """One request as the server saw it; fields from ``script`` on are filled in while answering.

    ``finished_at`` is set when the server finished replying or noticed the client was gone;
    ``client_closed`` is true when the client closed the connection before the reply completed,
    which is how tests check that the gateway hangs up upstream when its own client leaves.
    """

    method: str
    path: str
    """The request target as sent, query string included."""
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with ``", "``."""
    body: bytes
    json: Any
    """The body parsed as JSON, or ``None`` when empty or not JSON."""
    received_at: float
    """``time.monotonic()`` when the whole request had arrived."""
    connection_id: int
    """Serial number of the TCP connection, to tell reused connections apart."""
    script: Script | None = None
    """The script that answered it (chat requests only)."""
    status: int | None = None
    finished_at: float | None = None
    client_closed: bool = False


class _BadRequestError(Exception):
    """A request the server refuses to parse; the connection is answered and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Connection:
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
        data = await self.reader.read(_READ_SIZE)
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
                raise _BadRequestError(431, "Request header fields too large")
            scanned = len(self.buf)
            data = await self.reader.read(_READ_SIZE)
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
                raise _BadRequestError(400, "Line too long")
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
                raise _BadRequestError(400, "Bad chunk size") from None
            if size == 0:
                while await self.read_line():  # trailer fields, ignored
                    pass
                return bytes(body)
            if len(body) + size > _MAX_BODY:
                raise _BadRequestError(413, "Body too large")
            body += await self.read_exactly(size)
            if await self.read_exactly(2) != b"\r\n":
                raise _BadRequestError(400, "Bad chunk framing")

    async def wait_client_gone(self) -> None:
        """Return once the peer closes; pipelined bytes read meanwhile stay in ``buf``."""
        try:
            while len(self.buf) <= _MAX_PIPELINED:
                data = await self.reader.read(_READ_SIZE)
                if not data:
                    return
                self.buf += data
        except ConnectionError:
            return
        await _forever()  # a client flooding us while we reply: stop reading, keep replying


class _ChunkEncoder:
    """Builds framed SSE events for one reply; the JSON envelope is encoded once per reply."""

    __slots__ = ("_envelope", "_token_head", "_tokens")

    _TOKEN_TAIL = b'},"finish_reason":null}]}'

    def __init__(self, gen_id: str, created: int, model: str) -> None:
        self._envelope: dict[str, Any] = {
            "id": gen_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._token_head = (
            msgspec.json.encode(self._envelope)[:-1]
            + b',"choices":[{"index":0,"delta":{"role":"assistant","content":'
        )
        self._tokens: dict[str, bytes] = {}

    def token(self, text: str) -> bytes:
        frame = self._tokens.get(text)
        if frame is None:  # identical tokens are encoded once
            json = self._token_head + msgspec.json.encode(text) + self._TOKEN_TAIL
            frame = self._tokens[text] = _frame(json)
        return frame

    def event(self, **fields: Any) -> bytes:
        return _frame(msgspec.json.encode({**self._envelope, **fields}))


class FakeOpenRouter:
    """An OpenRouter-compatible HTTP/1.1 server on loopback that replies according to `Script`s.

    Serves ``POST {prefix}/chat/completions`` (streamed SSE when ``"stream": true``, else JSON),
    ``GET {prefix}/models`` and 404 JSON for anything else. Connections are kept alive unless the
    client asks otherwise. Every request is appended to `requests`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_script: Script | None = None,
        prefix: str = "/api/v1",
        models: Sequence[str] = ("openai/gpt-4o-mini", _DEFAULT_MODEL),
    ) -> None:
        self.host = host
        self.default_script = default_script if default_script is not None else Script()
        self.requests: list[RecordedRequest] = []
        self._requested_port = port
        self._prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._chat_path = f"{self._prefix}/chat/completions"
        self._models_path = f"{self._prefix}/models"
        self._models_body = msgspec.json.encode(
            {"data": [{"id": m, "object": "model"} for m in models]}
        )
        self._scripts: deque[Script] = deque()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._stopping = False
        self._handlers: set[asyncio.Task[Any]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._connection_ids = itertools.count(1)
        self._gen_ids = itertools.count(1)
        self._connections_total = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and listen; `port` is known afterwards (port 0 picks a free one)."""
        if self._server is not None:
            raise RuntimeError("FakeOpenRouter already started")
        self._stopping = False
        self._server = await asyncio.start_server(
            self._handle_connection, self.host, self._requested_port, limit=_READ_SIZE
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every open connection, mid-reply or idle."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
        self._notify()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- public helpers ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenRouter not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What the gateway uses as its OpenRouter base URL, e.g. ``http://127.0.0.1:PORT/api/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self._prefix}"

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def connections_total(self) -> int:
        """TCP connections accepted so far, to check that clients reuse connections."""
        return self._connections_total

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat requests only (readiness probes hit ``/models`` too)."""
        return [r for r in self.requests if r.script is not None]

    def enqueue(self, *scripts: Script) -> None:
        """Queue replies for the next chat requests, first in first out; then `default_script`."""
        self._scripts.extend(scripts)

    async def wait_for_requests(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a plain deadline argument reads best in tests
    ) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests arrived; raises TimeoutError otherwise."""
        await self._wait_until(lambda: len(self.requests) >= n, timeout)
        return self.requests

    async def wait_closed(
        self,
        index: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a plain deadline argument reads best in tests
    ) -> RecordedRequest:
        """Wait until ``requests[index]`` is finished (reply sent or client gone) and return it."""

        def finished() -> bool:
            return len(self.requests) > index and self.requests[index].finished_at is not None

        await self._wait_until(finished, timeout)
        return self.requests[index]

    async def _wait_until(self, predicate: Callable[[], bool], deadline_s: float) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(deadline_s):
            while not predicate():
                waiter = loop.create_future()
                self._waiters.append(waiter)
                await waiter

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is None or self._server is None:  # stop() already ran
            writer.transport.abort()
            return
        self._handlers.add(task)
        self._connections_total += 1
        conn = _Connection(next(self._connection_ids), reader, writer)
        try:
            while await self._serve_one(conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # stop() cancels us; ending cancelled would make asyncio log an error (3.11.7+).
            if not self._stopping:
                raise
        finally:
            self._handlers.discard(task)
            if self._stopping:
                writer.transport.abort()
            else:
                writer.close()

    async def _serve_one(self, conn: _Connection) -> bool:
        """Read and answer one request; True when the connection stays open for the next one."""
        try:
            head = await conn.read_head()
            if head is None:
                return False
            method, target, headers, keep_alive = _parse_head(head)
            if headers.get("expect", "").lower() == "100-continue":
                conn.writer.write(_CONTINUE)
            body = await _read_body(conn, headers)
        except _BadRequestError as exc:
            conn.writer.write(
                _json_response(exc.status, self._error_body(exc.status, exc.message), False)
            )
            return False
        try:
            parsed = msgspec.json.decode(body) if body else None
        except msgspec.DecodeError:
            parsed = None
        record = RecordedRequest(
            method=method,
            path=target,
            headers=headers,
            body=body,
            json=parsed,
            received_at=time.monotonic(),
            connection_id=conn.id,
        )
        self.requests.append(record)
        self._notify()
        try:
            return await self._dispatch(conn, record, keep_alive)
        finally:
            record.finished_at = time.monotonic()
            self._notify()

    async def _dispatch(self, conn: _Connection, record: RecordedRequest, keep_alive: bool) -> bool:
        path = record.path.partition("?")[0]
        if record.method == "POST" and path == self._chat_path:
            return await self._chat(conn, record, keep_alive)
        if record.method == "GET" and path == self._models_path:
            record.status = 200
            conn.writer.write(_json_response(200, self._models_body, keep_alive))
        else:
            record.status = 404
            body = self._error_body(404, f"No route for {record.method} {path}")
            conn.writer.write(_json_response(404, body, keep_alive))
        return keep_alive

    async def _chat(self, conn: _Connection, record: RecordedRequest, keep_alive: bool) -> bool:
        payload = record.json
        if not isinstance(payload, dict):
            record.status = 400
            body = self._error_body(400, "Request body must be a JSON object")
            conn.writer.write(_json_response(400, body, keep_alive))
            return keep_alive
        script = self._scripts.popleft() if self._scripts else self.default_script
        record.script = script
        streamed = payload.get("stream") is True
        reply = (self._stream_reply if streamed else self._json_reply)(
            conn, record, script, payload, keep_alive
        )
        if script.stall or script.first_token_delay > 0 or script.token_delay > 0:
            return await self._watched(conn, record, reply)
        try:  # no pauses: nothing to watch, the reply is written without yielding to the client
            return await reply
        except ConnectionError:
            record.client_closed = True
            return False

    async def _watched(
        self, conn: _Connection, record: RecordedRequest, reply: Coroutine[Any, Any, bool]
    ) -> bool:
        """Run a reply that pauses, cancelling it as soon as the client closes the connection."""
        send = asyncio.ensure_future(reply)
        watch = asyncio.ensure_future(conn.wait_client_gone())
        try:
            await asyncio.wait((send, watch), return_when=asyncio.FIRST_COMPLETED)
            client_gone = watch.done()
        finally:
            send.cancel()
            watch.cancel()
            await asyncio.gather(send, watch, return_exceptions=True)
        if not send.cancelled():
            exc = send.exception()
            if exc is None:
                return send.result() and not client_gone
            if not isinstance(exc, ConnectionError):
                raise exc
        record.client_closed = True
        return False

    async def _stream_reply(
        self,
        conn: _Connection,
        record: RecordedRequest,
        script: Script,
        payload: dict[str, Any],
        keep_alive: bool,
    ) -> bool:
        writer = conn.writer
        if script.status != 200 and not script.stall:
            if script.first_token_delay > 0:
                await asyncio.sleep(script.first_token_delay)
            record.status = script.status
            writer.write(self._script_error_response(script, keep_alive))
            return keep_alive
        record.status = 200
        writer.write(_response_head(200, [*_SSE_HEADERS, *script.headers.items()], keep_alive))
        if script.stall:
            await writer.drain()
            await _forever()
        await _wait_first_token(writer, script)

        tokens = script.tokens if script.tokens is not None else _echo_tokens(payload)
        model = payload.get("model")
        encoder = _ChunkEncoder(
            self._generation_id(),
            int(time.time()),
            model if isinstance(model, str) else _DEFAULT_MODEL,
        )
        if script.token_delay > 0:
            await _send_paced(writer, encoder.token, tokens, script.token_delay)
            body = b""
        else:  # no pauses: one write (same bytes on the wire, one syscall instead of one per token)
            body = b"".join([encoder.token(token) for token in tokens])
        if script.drop_after_tokens:
            writer.write(body)
            await writer.drain()
            writer.close()
            return False

        if script.in_band_error is not None:
            choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
            tail = encoder.event(error=script.in_band_error, choices=[choice])
        else:
            choice = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": script.finish_reason,
            }
            tail = encoder.event(choices=[choice])
            if script.usage:
                tail += encoder.event(choices=[], usage=_usage(payload, len(tokens)))
            if script.send_done:
                tail += _frame(b"[DONE]")
        writer.write(body + tail + _TERMINATOR)
        if writer.transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await writer.drain()
        return keep_alive

    async def _json_reply(
        self,
        conn: _Connection,
        record: RecordedRequest,
        script: Script,
        payload: dict[str, Any],
        keep_alive: bool,
    ) -> bool:
        writer = conn.writer
        if script.stall:
            await _forever()
        tokens = script.tokens if script.tokens is not None else _echo_tokens(payload)
        delay = script.first_token_delay + script.token_delay * max(0, len(tokens) - 1)
        if delay > 0:
            await asyncio.sleep(delay)
        if script.status != 200:
            record.status = script.status
            writer.write(self._script_error_response(script, keep_alive))
            return keep_alive
        if script.drop_after_tokens:
            writer.close()
            return False
        model = payload.get("model")
        completion: dict[str, Any] = {
            "id": self._generation_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model if isinstance(model, str) else _DEFAULT_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "finish_reason": script.finish_reason,
                }
            ],
        }
        if script.usage:
            completion["usage"] = _usage(payload, len(tokens))
        record.status = 200
        body = msgspec.json.encode(completion)
        writer.write(_json_response(200, body, keep_alive, script.headers.items()))
        return keep_alive

    def _generation_id(self) -> str:
        return f"gen-fake-{next(self._gen_ids):08d}"

    # -- hooks for look-alikes of other vendors (see fake_anthropic) ---------------------------

    def _error_body(self, status: int, message: str) -> bytes:
        """The JSON body of every error answer; OpenAI-style here."""
        return _error_body(status, message)

    def _script_error_response(self, script: Script, keep_alive: bool) -> bytes:
        message = (
            script.error_message if script.error_message is not None else _reason(script.status)
        )
        body = self._error_body(script.status, message)
        return _json_response(script.status, body, keep_alive, script.headers.items())


# -- HTTP helpers ------------------------------------------------------------------------------


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], bool]:
    """Method, target, lower-cased headers and whether the client wants keep-alive."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequestError(400, "Malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequestError(400, "Malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return method, target, headers, keep_alive


async def _read_body(conn: _Connection, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await conn.read_chunked_body()
    length = headers.get("content-length", "0").strip()
    if not length.isdigit():
        raise _BadRequestError(400, "Bad Content-Length")
    if int(length) > _MAX_BODY:
        raise _BadRequestError(413, "Body too large")
    return await conn.read_exactly(int(length))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _response_head(status: int, headers: Iterable[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_response(
    status: int, body: bytes, keep_alive: bool, extra: Iterable[tuple[str, str]] = ()
) -> bytes:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    return _response_head(status, headers, keep_alive) + body


def _error_body(status: int, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": status, "message": message}})


def _frame(data: bytes) -> bytes:
    """One SSE ``data:`` event wrapped in one HTTP/1.1 chunk."""
    event = b"data: " + data + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(event), event)


_COMMENT = b": OPENROUTER PROCESSING\n\n"
_COMMENT_FRAME = b"%x\r\n%b\r\n" % (len(_COMMENT), _COMMENT)


async def _wait_first_token(
    writer: asyncio.StreamWriter, script: Script, keepalive: bytes = _COMMENT_FRAME
) -> None:
    """Sleep ``first_token_delay``, sending ``keepalive`` every ``comments_while_waiting`` s."""
    delay = script.first_token_delay
    every = script.comments_while_waiting
    if every is None or every <= 0:
        if delay > 0:
            await asyncio.sleep(delay)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay
    while (remaining := deadline - loop.time()) > 0:
        writer.write(keepalive)
        await writer.drain()
        await asyncio.sleep(min(every, remaining))


async def _send_paced(
    writer: asyncio.StreamWriter, frame: Callable[[str], bytes], tokens: list[str], delay: float
) -> None:
    """One write per token, ``delay`` seconds apart, like a real model producing text."""
    transport = writer.transport
    for i, token in enumerate(tokens):
        if i:
            await asyncio.sleep(delay)
        if transport.is_closing():
            raise ConnectionResetError("client connection lost")
        writer.write(frame(token))
        if transport.get_write_buffer_size() > _DRAIN_ABOVE:
            await writer.drain()


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


# -- reply content -----------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """Plain text of a message content: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _echo_tokens(payload: dict[str, Any]) -> list[str]:
    last_user = next((m for m in reversed(_messages(payload)) if m.get("role") == "user"), None)
    text = "Echo: " + (_text_of(last_user.get("content")) if last_user else "")
    return _WORD.findall(text)


def _usage(payload: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    """Deterministic counts: prompt tokens are whitespace-separated words of all messages."""
    prompt_tokens = sum(len(_text_of(m.get("content")).split()) for m in _messages(payload))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# -- command line ------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m aura_agent.testing.fake_openrouter",
        description="Fake OpenRouter chat completions server for manual tests and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--prefix", default="/api/v1")
    parser.add_argument(
        "--tokens", type=int, default=None, help="reply with N tokens (default: echo the prompt)"
    )
    parser.add_argument("--token-text", default="tok ", help="text of each --tokens token")
    parser.add_argument("--first-token-delay-ms", type=float, default=0.0)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--comments-every-ms",
        type=float,
        default=None,
        help="send ': OPENROUTER PROCESSING' this often while waiting for the first token",
    )
    parser.add_argument("--no-usage", action="store_true", help="omit the usage chunk")
    args = parser.parse_args(argv)
    if args.tokens is not None and args.tokens < 0:
        parser.error("--tokens must be >= 0")
    return args


async def _serve(args: argparse.Namespace) -> int:
    script = Script(
        tokens=[args.token_text] * args.tokens if args.tokens is not None else None,
        first_token_delay=args.first_token_delay_ms / 1000,
        token_delay=args.token_delay_ms / 1000,
        usage=not args.no_usage,
        comments_while_waiting=(
            args.comments_every_ms / 1000 if args.comments_every_ms is not None else None
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError):  # Windows event loops lack signal handlers
            loop.add_signal_handler(sig, stop.set)
    async with FakeOpenRouter(
        host=args.host, port=args.port, default_script=script, prefix=args.prefix
    ) as fake:
        print(f"FAKE_OPENROUTER_READY {fake.chat_url}", flush=True)
        await stop.wait()
    return 0


def _runner() -> asyncio.Runner:
    try:
        import uvloop  # optional speed-up, only for the standalone process
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT; returns the process exit code."""
    args = _parse_args(argv)
    with _runner() as runner:
        return runner.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
