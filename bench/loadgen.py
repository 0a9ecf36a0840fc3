"""A cheap SSE load generator: one process, asyncio + uvloop, HTTP/1.1 on raw asyncio streams.

    uv run python bench/loadgen.py --mode chat --url http://127.0.0.1:8000/chat \\
        --api-key KEY --concurrency 50 --requests 2000 --duration 5 --expected-tokens 64

It is deliberately not httpx: a generic client would cost more CPU than the relay it measures.
Each virtual client keeps one keep-alive connection and sends its requests back to back. The
response is de-chunked incrementally and SSE events are *counted*, not parsed (one
``bytes.count`` per batch of complete events), so the client stays far cheaper than the server.

Modes:

- ``chat``: ``POST /chat`` with ``x-api-key`` and ``{"message": "bench"}``; a token is an event
  whose first line is ``data: `` (the gateway's ``event: done`` / ``event: error`` events start
  with ``event:``, keep-alives with ``:``).
- ``upstream``: an OpenAI-style streamed chat completion (``{"model","messages","stream":true}``),
  e.g. straight at the fake OpenRouter; a token is a ``"content":"..."`` with non-empty text.
- ``openai``: the same as ``upstream`` against a gateway's ``/v1/chat/completions`` with
  ``Authorization: Bearer``.

A stream succeeds when the status is 200, ``data: [DONE]`` arrived, no error event arrived, the
chunked body ended cleanly and (with ``--expected-tokens``) the token count matches. Everything
else is a failure, counted by kind. The JSON report (stdout) has TTFT (request written -> first
token read), total time, streams/s and tokens/s of the measured phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MODES = ("chat", "upstream", "openai")
MEASURE_MARKER = "LOADGEN_MEASURING"
"""Printed on stderr (with ``--marker``) when the measured phase starts, for the driver."""

_READ_SIZE = 256 * 1024
_MAX_HEAD = 64 * 1024
_CONNECT_CONCURRENCY = 64  # parallel connects while pre-connecting: stay under listen backlogs

_HEAD, _SIZE, _DATA, _CRLF, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class ProtocolError(Exception):
    """The response is not valid HTTP/1.1 (bad status line, chunk size, framing)."""


class ResponseParser:
    """Incremental HTTP/1.1 response parser that counts SSE token events in the body.

    Feed it the bytes as they arrive; it never copies the body beyond the current read. After
    ``finished`` is true, ``leftover`` holds bytes past the end of the response (none from a
    well-behaved server that is not pipelined).
    """

    __slots__ = (
        "_buf",
        "_left",
        "_openai",
        "_state",
        "_tail",
        "done",
        "error_event",
        "keep_alive",
        "leftover",
        "status",
        "tokens",
    )

    def __init__(self, mode: str = "chat") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self._openai = mode != "chat"
        self._state = _HEAD
        self._buf = b""
        self._tail = b""  # an incomplete SSE event carried over to the next piece
        self._left = 0
        self.status = 0
        self.keep_alive = True
        self.tokens = 0
        self.done = False  # saw `data: [DONE]`
        self.error_event = False  # saw `event: error` (chat) or an in-band `"error":` (openai)
        self.leftover = b""

    @property
    def finished(self) -> bool:
        return self._state == _DONE

    @property
    def nothing_received(self) -> bool:
        return self._state == _HEAD and not self._buf

    def feed_eof(self) -> None:
        """The peer closed: fine for a body delimited by the close, a ProtocolError otherwise."""
        if self._state == _UNTIL_CLOSE:
            self._flush_sse()
            self._state = _DONE
            self.keep_alive = False
            return
        raise ConnectionResetError("connection closed before the response ended")

    def feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        end = len(buf)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                self._sse(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = _CRLF
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > 1024:
                        raise ProtocolError("chunk size line too long")
                    break
                try:
                    size = int(buf[pos:eol].split(b";", 1)[0], 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {buf[pos:eol][:40]!r}") from None
                pos = eol + 2
                if size:
                    self._left = size
                    self._state = _DATA
                else:
                    self._state = _TRAILER
            elif state == _CRLF:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                pos += 2
                self._state = _SIZE
            elif state == _TRAILER:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                if eol == pos:  # the empty line ending the trailer section
                    pos += 2
                    self._end()
                    break
                pos = eol + 2
            elif state == _LENGTH:
                take = min(self._left, end - pos)
                self._sse(buf[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._end()
                    break
            elif state == _UNTIL_CLOSE:
                self._sse(buf[pos:])
                pos = end
            elif state == _HEAD:
                head_end = buf.find(b"\r\n\r\n", pos)
                if head_end < 0:
                    if end - pos > _MAX_HEAD:
                        raise ProtocolError("response head too large")
                    break
                self._head(buf[pos:head_end])
                pos = head_end + 4
                if self._state == _DONE:
                    break
            else:  # _DONE
                break
        rest = buf[pos:] if pos < end else b""
        if self._state == _DONE:
            self.leftover = rest
            self._buf = b""
        else:
            self._buf = rest

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad status line {lines[0][:60]!r}")
        try:
            self.status = int(parts[1])
        except ValueError:
            raise ProtocolError(f"bad status line {lines[0][:60]!r}") from None
        chunked = False
        length: int | None = None
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise ProtocolError(f"bad Content-Length {value[:40]!r}") from None
            elif name == b"connection":
                connection = value.strip().lower()
        self.keep_alive = parts[0] == b"HTTP/1.1" and b"close" not in connection
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._end()
        elif chunked:
            self._state = _SIZE
        elif length is not None:
            self._left = length
            self._state = _LENGTH if length else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False

    def _end(self) -> None:
        self._flush_sse()
        self._state = _DONE

    def _flush_sse(self) -> None:
        """At the end of the body, an unterminated last event still counts (lenient, like SSE)."""
        if self._tail:
            tail, self._tail = self._tail, b""
            self._count(tail + b"\n\n")

    def _sse(self, piece: bytes) -> None:
        if self._tail:
            piece = self._tail + piece
        cut = piece.rfind(b"\n\n")
        if cut < 0:
            self._tail = piece
            return
        cut += 2
        self._tail = piece[cut:]
        self._count(piece[:cut] if cut < len(piece) else piece)

    def _count(self, events: bytes) -> None:
        """Count the tokens in complete SSE events (``events`` starts at an event boundary)."""
        if self._openai:
            self.tokens += events.count(b'"content":"') - events.count(b'"content":""')
            if not self.error_event and b'"error":' in events:
                self.error_event = True
        else:
            self.tokens += events.count(b"\n\ndata: ") + events.startswith(b"data: ")
            if not self.error_event and (
                events.startswith(b"event: error") or b"\n\nevent: error" in events
            ):
                self.error_event = True
        if not self.done and b"data: [DONE]" in events:
            self.done = True


@dataclass(slots=True)
class Target:
    mode: str
    host: str
    port: int
    request: bytes

    @classmethod
    def build(cls, mode: str, url: str, api_key: str = "", model: str = "bench/model") -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs are supported: {url!r}")
        port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"{parts.hostname}:{port}"
        headers = [
            f"Host: {host_header}",
            "Accept: text/event-stream",
            "Content-Type: application/json",
        ]
        if mode == "chat":
            body = json.dumps({"message": "bench"}).encode()
            if api_key:
                headers.append(f"x-api-key: {api_key}")
        elif mode in ("upstream", "openai"):
            payload = {
                "model": model,
                "messages": [{"role": "user", "content": "bench"}],
                "stream": True,
            }
            body = json.dumps(payload).encode()
            if api_key:
                headers.append(f"Authorization: Bearer {api_key}")
        else:
            raise ValueError(f"unknown mode {mode!r}")
        headers.append(f"Content-Length: {len(body)}")
        head = f"POST {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
        return cls(mode, parts.hostname, port, head.encode("latin-1") + body)


@dataclass(slots=True)
class Stats:
    """What one phase (warm-up or measured) collected."""

    ttft: list[float] = field(default_factory=list)  # seconds, successful streams only
    total: list[float] = field(default_factory=list)
    ok: int = 0
    attempts: int = 0
    tokens: int = 0  # every token received, failed streams included
    failures: Counter[str] = field(default_factory=Counter)
    first_failure: dict[str, str] = field(default_factory=dict)
    connects: int = 0
    stale_retries: int = 0
    started: float = 0.0
    last_end: float = 0.0

    def fail(self, kind: str, detail: str = "") -> None:
        self.failures[kind] += 1
        if kind not in self.first_failure:
            self.first_failure[kind] = detail[:200]


class _Client:
    """One virtual client: one keep-alive connection, reopened after a failure or a close."""

    __slots__ = ("reader", "target", "writer")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, stats: Stats) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.target.host, self.target.port, limit=_READ_SIZE
        )
        stats.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def one(self, stats: Stats, expected_tokens: int | None, timeout: float) -> None:  # noqa: ASYNC109
        """One stream, recorded in ``stats``; a reused connection the server had already closed
        (nothing received) is reopened once and retried, as browsers and HTTP clients do."""
        stats.attempts += 1
        clock = time.perf_counter
        parser = ResponseParser(self.target.mode)
        ttft: float | None = None
        t0 = clock()
        try:
            async with asyncio.timeout(timeout):
                for retry in (False, True):
                    reused = self.writer is not None
                    if not reused:
                        try:
                            await self.connect(stats)
                        except OSError as exc:
                            self.close()
                            stats.fail("connect_error", repr(exc))
                            return
                    t0 = clock()
                    reader, writer = self.reader, self.writer
                    assert reader is not None
                    assert writer is not None
                    try:
                        writer.write(self.target.request)
                        read = reader.read
                        while not parser.finished:
                            data = await read(_READ_SIZE)
                            if not data:
                                parser.feed_eof()
                                break
                            parser.feed(data)
                            if ttft is None and parser.tokens:
                                ttft = clock() - t0
                    except OSError:
                        if reused and not retry and parser.nothing_received:
                            self.close()
                            stats.stale_retries += 1
                            parser = ResponseParser(self.target.mode)
                            continue
                        raise
                    break
        except TimeoutError:
            self.close()
            stats.tokens += parser.tokens
            stats.fail("timeout", f"no complete response within {timeout:g} s")
            return
        except OSError as exc:
            self.close()
            stats.tokens += parser.tokens
            stats.fail("connection_error", repr(exc))
            return
        except ProtocolError as exc:
            self.close()
            stats.tokens += parser.tokens
            stats.fail("protocol_error", str(exc))
            return
        end = clock()
        stats.last_end = end
        stats.tokens += parser.tokens
        if not parser.keep_alive or parser.leftover:
            self.close()
        if parser.status != 200:
            stats.fail(f"status_{parser.status}")
        elif parser.error_event:
            stats.fail("error_event")
        elif not parser.done:
            stats.fail("missing_done", f"{parser.tokens} tokens, no [DONE]")
        elif expected_tokens is not None and parser.tokens != expected_tokens:
            stats.fail("token_count", f"{parser.tokens} tokens, expected {expected_tokens}")
        else:
            stats.ok += 1
            stats.ttft.append(ttft if ttft is not None else end - t0)
            stats.total.append(end - t0)


async def _phase(
    clients: Sequence[_Client],
    *,
    requests: int,
    duration: float,
    expected_tokens: int | None,
    timeout: float,  # noqa: ASYNC109
    abort_at_deadline: bool,
    stagger: float = 0.0,
) -> Stats:
    """Clients send back to back until ``requests`` were started or ``duration`` has passed.

    In-flight streams then finish (bounded by ``timeout``), or with ``abort_at_deadline`` are cut
    at the deadline (for warm-ups: the server sees clients leave, which it must handle anyway).
    """
    stats = Stats()
    budget = [requests]
    clock = time.perf_counter
    stats.started = start = clock()
    deadline = start + duration

    async def run(client: _Client, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        while budget[0] > 0 and clock() < deadline:
            budget[0] -= 1
            await client.one(stats, expected_tokens, timeout)

    step = stagger / len(clients) if clients else 0.0
    tasks = [asyncio.ensure_future(run(c, i * step)) for i, c in enumerate(clients)]
    hard_cap = duration + (0.0 if abort_at_deadline else timeout) + 1.0
    _, pending = await asyncio.wait(tasks, timeout=hard_cap)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        for client in clients:
            client.close()  # a cancelled stream leaves its connection mid-response
        if not abort_at_deadline:
            stats.fail("cancelled", f"{len(pending)} clients still busy at the hard time cap")
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            stats.fail("client_crash", repr(task.exception()))
    if not stats.last_end:
        stats.last_end = clock()
    return stats


async def _preconnect(clients: Sequence[_Client], stats: Stats, timeout: float) -> None:  # noqa: ASYNC109
    gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)

    async def connect(client: _Client) -> None:
        async with gate:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(timeout):
                    await client.connect(stats)

    await asyncio.gather(*(connect(c) for c in clients))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), like numpy's default; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 3)

    return {
        "p50": ms(percentile(values, 50)),
        "p90": ms(percentile(values, 90)),
        "p99": ms(percentile(values, 99)),
        "max": ms(max(values)) if values else None,
        "mean": ms(sum(values) / len(values)) if values else None,
    }


def report(stats: Stats, **context: Any) -> dict[str, Any]:
    elapsed = max(stats.last_end - stats.started, 1e-9)
    failures = sum(stats.failures.values())
    return {
        **context,
        "attempts": stats.attempts,
        "streams": stats.ok,
        "failures": failures,
        "failure_kinds": dict(stats.failures),
        "failure_examples": stats.first_failure,
        "elapsed_s": round(elapsed, 4),
        "streams_per_s": round(stats.ok / elapsed, 2),
        "tokens": stats.tokens,
        "tokens_per_s": round(stats.tokens / elapsed, 1),
        "ttft_ms": _summary_ms(stats.ttft),
        "total_ms": _summary_ms(stats.total),
        "connections_opened": stats.connects,
        "stale_retries": stats.stale_retries,
    }


async def run_load(
    *,
    mode: str,
    url: str,
    concurrency: int,
    requests: int,
    duration: float,
    expected_tokens: int | None = None,
    api_key: str = "",
    model: str = "bench/model",
    timeout: float = 30.0,  # noqa: ASYNC109
    warmup_requests: int = 0,
    warmup_seconds: float = 0.0,
    warmup_concurrency: int | None = None,
    marker: bool = False,
    stagger: float = 0.0,
) -> dict[str, Any]:
    """Run a warm-up (optional) then the measured phase; returns the JSON-able report.

    Both phases are bounded twice: by a request count and by seconds (new requests stop at the
    deadline; in-flight ones get ``timeout`` more seconds at most). By default every client
    starts at once, so with paced streams of equal length requests keep arriving in waves of
    ``concurrency``; ``stagger`` spreads the clients' first requests over that many seconds.
    """
    if concurrency < 1 or requests < 1 or duration <= 0:
        raise ValueError("concurrency, requests and duration must be positive")
    target = Target.build(mode, url, api_key, model)
    clients = [_Client(target) for _ in range(concurrency)]
    connect_stats = Stats()
    try:
        await _preconnect(clients, connect_stats, min(timeout, 10.0))
        warmup: Stats | None = None
        if warmup_requests > 0 and warmup_seconds > 0:
            n = min(warmup_concurrency or concurrency, concurrency)
            warmup = await _phase(
                clients[:n],
                requests=warmup_requests,
                duration=warmup_seconds,
                expected_tokens=expected_tokens,
                timeout=timeout,
                abort_at_deadline=True,
            )
            await _preconnect([c for c in clients if c.writer is None], connect_stats, 10.0)
        if marker:
            print(MEASURE_MARKER, file=sys.stderr, flush=True)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stats = await _phase(
            clients,
            requests=requests,
            duration=duration,
            expected_tokens=expected_tokens,
            timeout=timeout,
            abort_at_deadline=False,
            stagger=stagger,
        )
    finally:
        for client in clients:
            client.close()
    result = report(
        stats,
        mode=mode,
        url=url,
        concurrency=concurrency,
        requests_cap=requests,
        duration_cap_s=duration,
        expected_tokens=expected_tokens,
    )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result["loadgen_cpu_s"] = round(cpu, 3)
    result["loadgen_cpu_util"] = round(cpu / wall, 3) if wall > 0 else None
    result["preconnected"] = connect_stats.connects
    if warmup is not None:
        result["warmup"] = {
            "attempts": warmup.attempts,
            "streams": warmup.ok,
            "failures": dict(warmup.failures),
        }
    return result


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (up to the hard limit); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def new_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", choices=MODES, default="chat")
    parser.add_argument("--url", required=True, help="full URL, e.g. http://127.0.0.1:8000/chat")
    parser.add_argument("--api-key", default="", help="x-api-key (chat) or Bearer token (openai)")
    parser.add_argument("--model", default="bench/model", help="model in upstream/openai bodies")
    parser.add_argument("--concurrency", "-c", type=int, default=1, help="virtual clients")
    parser.add_argument("--requests", "-n", type=int, default=1000, help="total streams (cap)")
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="seconds (cap)")
    parser.add_argument("--expected-tokens", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per stream")
    parser.add_argument("--warmup-requests", type=int, default=0)
    parser.add_argument("--warmup-seconds", type=float, default=0.0)
    parser.add_argument("--warmup-concurrency", type=int, default=None)
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds over which the clients' first measured requests are spread (0: all at once)",
    )
    parser.add_argument(
        "--marker", action="store_true", help=f"print {MEASURE_MARKER} on stderr when measuring"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile(args.concurrency * 2 + 256)
    with new_runner() as runner:
        result = runner.run(
            run_load(
                mode=args.mode,
                url=args.url,
                concurrency=args.concurrency,
                requests=args.requests,
                duration=args.duration,
                expected_tokens=args.expected_tokens,
                api_key=args.api_key,
                model=args.model,
                timeout=args.timeout,
                warmup_requests=args.warmup_requests,
                warmup_seconds=args.warmup_seconds,
                warmup_concurrency=args.warmup_concurrency,
                marker=args.marker,
                stagger=args.stagger,
            )
        )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
