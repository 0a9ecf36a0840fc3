"""A real OpenRouter look-alike HTTP/1.1 server on loopback, for end-to-end tests and benchmarks.

Transport-level mocks cannot catch bugs in connection handling (keep-alive, chunked framing,
timeouts, propagating a client's disconnect upstream). This server speaks the wire protocol over
real sockets so those paths run for real, and it records what it saw (including *when* a client
went away). It is built on bare ``asyncio`` streams with replies precomputed per request, so it is
not the bottleneck when benchmarking the gateway in front of it. The HTTP plumbing is in
`loopback_http`, the scripts and recordings in `script`, the reply bodies (text, reasoning, tool
calls, logprobs) in `replies`; what is left is one server class whose methods follow one
request's life, and its command line.

In-process::

    async with FakeOpenRouter() as fake:
        fake.enqueue(Script(tokens=["Hi", "!"], token_delay=0.01))
        ...  # point the gateway at fake.base_url

As a process (prints ``FAKE_OPENROUTER_READY <chat url>`` once listening)::

    python -m aura_agent.testing.fake_openrouter --port 9100 --tokens 64 --token-delay-ms 5
    python -m aura_agent.testing.fake_openrouter --port 9100 --tool-call-fragments 40
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from contextlib import suppress
from typing import Any, Final, Self

import msgspec

from aura_agent.testing.loopback_http import (
    CONTINUE,
    DRAIN_ABOVE,
    READ_SIZE,
    SSE_HEADERS,
    TERMINATOR,
    BadRequestError,
    Connection,
    forever,
    json_response,
    parse_head,
    read_body,
    reason_phrase,
    response_head,
    same,
    send_frames,
    sse_chunk,
)
from aura_agent.testing.replies import ChunkEncoder, completion_body, reply_usage
from aura_agent.testing.script import RecordedRequest, Script, ScriptedToolCall, echo_tokens

__all__ = ["FakeOpenRouter", "RecordedRequest", "Script", "ScriptedToolCall", "main"]

_DEFAULT_MODEL = "openrouter/auto"


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
            self._handle_connection, self.host, self._requested_port, limit=READ_SIZE
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
        conn = Connection(next(self._connection_ids), reader, writer)
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

    async def _serve_one(self, conn: Connection) -> bool:
        """Read and answer one request; True when the connection stays open for the next one."""
        try:
            head = await conn.read_head()
            if head is None:
                return False
            method, target, headers, keep_alive = parse_head(head)
            if headers.get("expect", "").lower() == "100-continue":
                conn.writer.write(CONTINUE)
            body = await read_body(conn, headers)
        except BadRequestError as exc:
            conn.writer.write(
                json_response(exc.status, self._error_body(exc.status, exc.message), False)
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

    async def _dispatch(self, conn: Connection, record: RecordedRequest, keep_alive: bool) -> bool:
        path = record.path.partition("?")[0]
        if record.method == "POST" and path == self._chat_path:
            return await self._chat(conn, record, keep_alive)
        if record.method == "GET" and path == self._models_path:
            record.status = 200
            conn.writer.write(json_response(200, self._models_body, keep_alive))
        else:
            record.status = 404
            body = self._error_body(404, f"No route for {record.method} {path}")
            conn.writer.write(json_response(404, body, keep_alive))
        return keep_alive

    async def _chat(self, conn: Connection, record: RecordedRequest, keep_alive: bool) -> bool:
        payload = record.json
        if not isinstance(payload, dict):
            record.status = 400
            body = self._error_body(400, "Request body must be a JSON object")
            conn.writer.write(json_response(400, body, keep_alive))
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
        self, conn: Connection, record: RecordedRequest, reply: Coroutine[Any, Any, bool]
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
        conn: Connection,
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
        writer.write(response_head(200, [*SSE_HEADERS, *script.headers.items()], keep_alive))
        if script.stall:
            await writer.drain()
            await forever()
        await wait_first_token(writer, script)

        tokens = script.tokens if script.tokens is not None else echo_tokens(payload)
        model = payload.get("model")
        encoder = ChunkEncoder(
            self._generation_id(),
            int(time.time()),
            model if isinstance(model, str) else _DEFAULT_MODEL,
        )
        if script.plain:  # the benchmarks' path: tokens encoded straight from their text
            body = await send_frames(writer, encoder.token, tokens, script.token_delay)
        else:
            frames = encoder.content(script, tokens)
            body = await send_frames(writer, same, frames, script.token_delay)
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
                "finish_reason": script.effective_finish_reason,
            }
            tail = encoder.event(choices=[choice])
            if script.usage:
                tail += encoder.event(choices=[], usage=reply_usage(payload, script, tokens))
            if script.send_done:
                tail += sse_chunk(b"[DONE]")
        writer.write(body + tail + TERMINATOR)
        if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
            await writer.drain()
        return keep_alive

    async def _json_reply(
        self,
        conn: Connection,
        record: RecordedRequest,
        script: Script,
        payload: dict[str, Any],
        keep_alive: bool,
    ) -> bool:
        writer = conn.writer
        if script.stall:
            await forever()
        tokens = script.tokens if script.tokens is not None else echo_tokens(payload)
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
        body = completion_body(
            self._generation_id(),
            int(time.time()),
            model if isinstance(model, str) else _DEFAULT_MODEL,
            script,
            tokens,
            payload,
        )
        record.status = 200
        writer.write(json_response(200, body, keep_alive, script.headers.items()))
        return keep_alive

    def _generation_id(self) -> str:
        return f"gen-fake-{next(self._gen_ids):08d}"

    # -- hooks for look-alikes of other vendors (see fake_anthropic) ---------------------------

    def _error_body(self, status: int, message: str) -> bytes:
        """The JSON body of every error answer; OpenAI-style here."""
        return _error_body(status, message)

    def _script_error_response(self, script: Script, keep_alive: bool) -> bytes:
        message = (
            script.error_message
            if script.error_message is not None
            else reason_phrase(script.status)
        )
        body = self._error_body(script.status, message)
        return json_response(script.status, body, keep_alive, script.headers.items())


# -- helpers -----------------------------------------------------------------------------------


def _error_body(status: int, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": status, "message": message}})


_COMMENT = b": OPENROUTER PROCESSING\n\n"
_COMMENT_FRAME = b"%x\r\n%b\r\n" % (len(_COMMENT), _COMMENT)


async def wait_first_token(
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
    parser.add_argument(
        "--tool-call-fragments",
        type=int,
        default=0,
        metavar="N",
        help="reply with one tool call (lookup, ~200-byte arguments) in N argument fragments, "
        "after the --tokens text if given (default 0: no tool call)",
    )
    args = parser.parse_args(argv)
    if args.tokens is not None and args.tokens < 0:
        parser.error("--tokens must be >= 0")
    if args.tool_call_fragments < 0:
        parser.error("--tool-call-fragments must be >= 0")
    return args


LOOKUP_ARGUMENTS: Final = msgspec.json.encode(
    {
        "query": "opening hours of the Kunsthaus Zürich on public holidays",
        "filters": {"city": "Zürich", "country": "CH", "kind": ["museum", "gallery"]},
        "limit": 5,
        "language": "de-CH",
        "include_closed": False,
    }
).decode()
"""The arguments of the command line's tool call: about 200 bytes with non-ASCII text, so that
fragments cut inside strings and next to multi-byte characters, as a model's do."""


def _script(args: argparse.Namespace) -> Script:
    """The default script the command-line flags describe."""
    tokens = [args.token_text] * args.tokens if args.tokens is not None else None
    tool_calls = None
    if args.tool_call_fragments > 0:
        call = ScriptedToolCall("call_0", "lookup", LOOKUP_ARGUMENTS, args.tool_call_fragments)
        tool_calls = [call]
        tokens = tokens or []  # a tool call alone, not the echo, unless --tokens asks for text
    return Script(
        tokens=tokens,
        first_token_delay=args.first_token_delay_ms / 1000,
        token_delay=args.token_delay_ms / 1000,
        usage=not args.no_usage,
        comments_while_waiting=(
            args.comments_every_ms / 1000 if args.comments_every_ms is not None else None
        ),
        tool_calls=tool_calls,
    )


async def _serve(args: argparse.Namespace) -> int:
    script = _script(args)
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
