"""Fault injection: the real app under uvicorn on loopback, in front of upstreams that misbehave.

Every case checks four things, not just the error the client sees:

* the client gets a clear `event: error` (never a hang, a stack trace, a URL or a key);
* the process stays healthy: `/health` answers and a normal chat works right after;
* nothing is saved wrongly: the next turn on the same session carries no history;
* resources return to their baseline: no request still in flight in uvicorn, no upstream
  connection checked out of the app's pool or left half-closed (CLOSE_WAIT), no leaked file
  descriptors beyond the pool's idle connections, no `RequestRecord` or `httpx.Response` alive.

The app has two routes: `main` (a healthy `FakeOpenRouter`) and `fault` (the misbehaving
upstream, or the same fake running a faulty `Script`). Faults use `fault`; the check that the
process recovered uses `main`.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from httpx_sse import ServerSentEvent

from aura_agent.app import create_app
from aura_agent.container import Container
from aura_agent.http.record import RequestRecord
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.raw_upstream import SSE_HEAD, RawReply, RawUpstream, chunk_event, token_event
from tests.server_process import free_port
from tests.support import (
    API_KEY,
    AUTH,
    OPENROUTER_KEY,
    make_settings,
    parse_sse,
    serve_app,
    terminal_event,
    tokens_of,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not Path("/proc/net/tcp").exists(), reason="counts sockets through Linux /proc"
    ),
]

FD_SLACK = 4
"""File descriptors a case may leave open beyond the pool's idle connections (two per pooled
connection: the app's end and the fake's end, both in this process)."""
SETTLE_SECONDS = 5.0

_TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}

FAULT_MATRIX: list[tuple[str, str, str]] = []
"""(case, what the client saw, outcome) rows; printed at the end of the module (`-s`)."""


@pytest.fixture(scope="module", autouse=True)
def _print_fault_matrix() -> Any:
    yield
    if FAULT_MATRIX:
        width = max(len(case) for case, _, _ in FAULT_MATRIX)
        print("\nFAULT MATRIX")
        for case, saw, outcome in FAULT_MATRIX:
            print(f"  {case:<{width}}  | {saw} | {outcome}")


@pytest.fixture(params=["httpx", "asyncio"])  # = TRANSPORTS
def transport(request: pytest.FixtureRequest) -> str:
    """UPSTREAM_TRANSPORT: every fault runs on every way the app can move upstream bytes."""
    transport: str = request.param
    return transport


# -- resource accounting ----------------------------------------------------------------------


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _sockets_to(ports: frozenset[int]) -> Counter[str]:
    """TCP states of this process's sockets whose *remote* port is one of `ports`."""
    mine = _socket_inodes()
    states: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    parts = line.split()
                    remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                    if remote_port in ports and parts[9] in mine:
                        states[_TCP_STATES.get(parts[3], parts[3])] += 1
        except FileNotFoundError:
            continue
    return states


def _live_records() -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is RequestRecord)


def _live_upstream_responses(ports: frozenset[int]) -> int:
    """The app's httpx responses from upstreams (the test's own responses are not counted)."""
    count = 0
    for obj in gc.get_objects():
        if type(obj) is httpx.Response:
            request = obj._request
            if request is not None and request.url.port in ports:
                count += 1
    return count


def _asgi_tasks() -> int:
    """Requests uvicorn is still running the app for."""
    return sum(
        1
        for task in asyncio.all_tasks()
        if not task.done() and "run_asgi" in getattr(task.get_coro(), "__qualname__", "")
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    fds: int
    upstream_sockets: Counter[str]
    pool_busy: int
    pool_total: int
    asgi_tasks: int
    records: int
    responses: int

    @property
    def quiet(self) -> bool:
        """Nothing in flight: no request running, no upstream connection checked out."""
        return self.asgi_tasks == 0 and self.pool_busy == 0

    def unpooled_fds(self) -> int:
        return self.fds - 2 * self.pool_total


# -- the harness ------------------------------------------------------------------------------


@dataclass(slots=True)
class Harness:
    base: str
    http: httpx.AsyncClient
    fake: FakeOpenRouter
    container: Container
    upstream_ports: frozenset[int]
    baseline: Snapshot | None = None
    extra_upstreams: list[RawUpstream] = field(default_factory=list)

    async def chat(
        self, message: str, *, session_id: str | None = None, route: str = "main"
    ) -> httpx.Response:
        body: dict[str, str] = {"message": message, "model": route}
        if session_id is not None:
            body["session_id"] = session_id
        async with asyncio.timeout(20):
            return await self.http.post("/chat", json=body, headers=AUTH)

    async def pool_usage(self) -> tuple[int, int]:
        """(connections checked out, connections open) in the app's upstream pool."""
        client = self.container.http_client()
        if inspect.isawaitable(client):
            client = await client
        assert isinstance(client, httpx.AsyncClient)
        transport = client._transport  # type: ignore[attr-defined]
        if (pool := getattr(transport, "_pool", None)) is not None:  # httpx's own (httpcore)
            connections = [c for c in pool.connections if not c.is_closed()]
            return sum(1 for c in connections if not c.is_idle()), len(connections)
        if (counts := getattr(transport, "connection_counts", None)) is not None:
            busy_total: tuple[int, int] = counts()  # AsyncioTransport
            return busy_total
        raise AssertionError(f"no pool counts for {type(transport).__name__}")

    async def snapshot(self) -> Snapshot:
        busy, total = await self.pool_usage()
        gc.collect()
        return Snapshot(
            fds=len(os.listdir("/proc/self/fd")),
            upstream_sockets=_sockets_to(self.upstream_ports),
            pool_busy=busy,
            pool_total=total,
            asgi_tasks=_asgi_tasks(),
            records=_live_records(),
            responses=_live_upstream_responses(self.upstream_ports),
        )

    async def settle(self) -> Snapshot:
        """The first quiet snapshot within SETTLE_SECONDS (or the last one, for the message)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            snap = await self.snapshot()
            unfinished = [r for r in self.fake.requests if r.finished_at is None]
            raw_open = sum(raw.open_connections for raw in self.extra_upstreams)
            if snap.quiet and not unfinished and not raw_open and _no_half_closed(snap):
                return snap
            if time.monotonic() > deadline:
                return snap
            await asyncio.sleep(0.02)

    def assert_at_baseline(self, snap: Snapshot) -> None:
        base = self.baseline
        assert base is not None
        assert snap.asgi_tasks == 0, f"requests still running in the app: {snap}"
        assert snap.pool_busy == 0, f"an upstream connection is still checked out: {snap}"
        assert _no_half_closed(snap), f"upstream sockets left half-closed: {snap}"
        assert sum(snap.upstream_sockets.values()) <= snap.pool_total, snap
        assert snap.unpooled_fds() <= base.unpooled_fds() + FD_SLACK, (base, snap)
        assert snap.records <= base.records, f"RequestRecords leaked: {base} -> {snap}"
        assert snap.responses <= base.responses, f"httpx.Responses leaked: {base} -> {snap}"
        for raw in self.extra_upstreams:
            assert raw.open_connections == 0, "the app kept a connection to the faulty upstream"


def _no_half_closed(snap: Snapshot) -> bool:
    return set(snap.upstream_sockets) <= {"ESTABLISHED"}


def _models_file(tmp_path: Path, main_url: str, fault_url: str, fault_retries: int) -> Path:
    path = tmp_path / "models.json"
    routes = {
        "main": {"provider": "openrouter", "model": "fake/main", "base_url": main_url},
        "fault": {
            "provider": "openrouter",
            "model": "fake/fault",
            "base_url": fault_url,
            "max_retries": fault_retries,
        },
    }
    path.write_bytes(msgspec.json.encode({"default": "main", "routes": routes}))
    return path


@asynccontextmanager
async def harness(
    tmp_path: Path,
    transport: str,
    *,
    raw: RawReply | None = None,
    dead_port: bool = False,
    fault_retries: int = 0,
    **overrides: object,
) -> AsyncIterator[Harness]:
    """The app under uvicorn, a healthy fake, and the fault route's upstream; baseline taken."""
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeOpenRouter())
        ports = {fake.port}
        fault_url = fake.base_url
        extra: list[RawUpstream] = []
        if raw is not None:
            upstream = await stack.enter_async_context(RawUpstream(raw))
            extra.append(upstream)
            ports.add(upstream.port)
            fault_url = upstream.base_url
        elif dead_port:
            port = free_port()
            ports.add(port)
            fault_url = f"http://127.0.0.1:{port}/api/v1"
        settings = make_settings(
            models_file=str(_models_file(tmp_path, fake.base_url, fault_url, fault_retries)),
            keepalive_seconds=0.2,
            upstream_connect_timeout=2,
            retry_backoff_ms=10,
            upstream_transport=transport,
            **overrides,
        )
        container = Container(settings=settings)
        app = create_app(settings, container)
        base = await stack.enter_async_context(serve_app(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(15))
        )
        h = Harness(base, http, fake, container, frozenset(ports), extra_upstreams=extra)
        # Warm up (imports, the pooled connection to the fake), then take the baseline.
        for index in range(2):
            warm = await h.chat("warm up", session_id=f"warm-{index}")
            assert terminal_event(parse_sse(warm.content)).event == "done"
        h.baseline = await h.settle()
        assert h.baseline.quiet, h.baseline
        yield h


async def check_recovered(h: Harness, session_id: str) -> None:
    """Healthy, a normal chat works, the failed turn left no history, resources at baseline."""
    health = await h.http.get("/health")
    assert health.status_code == 200
    h.fake.enqueue(Script(tokens=["fine"]))
    response = await h.chat("after", session_id=session_id)
    events = parse_sse(response.content)
    assert tokens_of(events) == ["fine"]
    assert terminal_event(events).event == "done"
    assert h.fake.chat_requests[-1].json["messages"] == [{"role": "user", "content": "after"}]
    h.assert_at_baseline(await h.settle())


def assert_clean_error(
    response: httpx.Response, expected: str | tuple[str, ...]
) -> ServerSentEvent:
    """A 200 event stream that ends with one readable `error` event containing `expected`."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.content)
    error = terminal_event(events)
    assert error.event == "error", response.text[-500:]
    assert [e.event for e in events].count("error") == 1
    assert "done" not in [e.event for e in events]
    alternatives = (expected,) if isinstance(expected, str) else expected
    assert any(text in error.data for text in alternatives), error.data
    for leak in ("127.0.0.1", "http://", "Traceback", OPENROUTER_KEY, API_KEY):
        assert leak not in error.data
    return error


def record(case: str, response: httpx.Response, outcome: str) -> None:
    events = parse_sse(response.content)
    tokens = tokens_of(events)
    last = terminal_event(events)
    saw = f"{len(tokens)} token(s), then event: {last.event} {last.data[:90]!r}"
    FAULT_MATRIX.append((case, saw, outcome))


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    expected: str | tuple[str, ...]
    """The error event's text contains this (or one of these)."""
    tokens: tuple[str, ...] = ()
    script: Script | None = None
    raw: RawReply | None = None
    dead_port: bool = False
    settings: dict[str, object] = field(default_factory=dict)
    upstream_closed: bool = False
    """The fake (or the raw upstream) must see the app hang up, not just time out itself."""
    xfail: dict[str, str] = field(default_factory=dict)
    """Transport -> why this case fails there today (strict xfail)."""


REACH = "Could not reach OpenRouter"
MALFORMED = b"data: {not json}\n\n"
BROKE = "The connection to OpenRouter broke in the middle of the reply"

FAULTS = [
    Fault("connection refused (dead loopback port)", REACH, dead_port=True),
    Fault(
        "reset on accept (RST before headers)",
        REACH,
        raw=RawReply(read_request=False, then="reset"),
    ),
    Fault("closed after the request (FIN before headers)", REACH, raw=RawReply(then="close")),
    Fault(
        "garbage instead of HTTP",
        REACH,
        raw=RawReply(writes=[b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], then="close"),
    ),
    Fault(
        "reset mid-stream (RST after 2 tokens)",
        BROKE,
        tokens=("Hel", "lo"),
        raw=RawReply(
            writes=[SSE_HEAD, token_event("Hel"), token_event("lo")], pause=0.2, then="reset"
        ),
    ),
    Fault(
        "dropped mid-stream (drop_after_tokens)",
        BROKE,
        tokens=("half", " a"),
        script=Script(tokens=["half", " a"], drop_after_tokens=True),
    ),
    Fault(
        "stall before the first token (first-token timeout 0.5 s)",
        "The model did not start answering within 0.5 s",
        script=Script(stall=True),
        settings={"upstream_first_token_timeout": 0.5},
        upstream_closed=True,
    ),
    Fault(
        "stall before the first token, upstream keep-alive comments",
        "The model did not start answering within 0.5 s",
        script=Script(tokens=["late"], first_token_delay=30, comments_while_waiting=0.1),
        settings={"upstream_first_token_timeout": 0.5},
        upstream_closed=True,
    ),
    Fault(
        "stall mid-stream (idle timeout 0.4 s)",
        "No data from the model for 0.4 s",
        tokens=("a",),
        raw=RawReply(writes=[SSE_HEAD, token_event("a")], then="stall"),
        settings={"upstream_idle_timeout": 0.4},
        upstream_closed=True,
    ),
    Fault(
        "malformed chunk first (data: {not json})",
        "OpenRouter sent a malformed chunk",
        raw=RawReply(writes=[SSE_HEAD, MALFORMED], then="close"),
    ),
    Fault(
        "malformed chunk after a token (in a later read)",
        "OpenRouter sent a malformed chunk",
        tokens=("ok",),
        raw=RawReply(writes=[SSE_HEAD, token_event("ok"), MALFORMED], pause=0.2, then="stall"),
        upstream_closed=True,
    ),
    Fault(
        "200 with an in-band error after a token",
        "HTTP 502",
        tokens=("partial",),
        script=Script(
            tokens=["partial"], in_band_error={"code": 502, "message": "Upstream provider died"}
        ),
    ),
    Fault(
        "truncated: no finish, no [DONE], clean EOF",
        "The stream ended early",
        tokens=("Hel", "lo"),
        raw=RawReply(writes=[SSE_HEAD + token_event("Hel") + token_event("lo")], then="close"),
    ),
    Fault(
        "200 with a JSON body instead of a stream",
        "OpenRouter answered without a stream",
        raw=RawReply(
            writes=[
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
                b'Connection: close\r\n\r\n{"ok": true}\n'
            ],
            then="close",
        ),
    ),
    Fault(
        "one 9 MB line (over the decoder's 8 MiB limit)",
        "OpenRouter sent an invalid event stream",
        script=Script(tokens=["x" * 9_000_000]),
    ),
    Fault(
        "HTTP 401 from upstream",
        "OpenRouter rejected the API key",
        script=Script(status=401, error_message="No auth credentials found"),
    ),
    Fault(
        "HTTP 500 from upstream",
        "OpenRouter cannot serve the model right now (HTTP 500)",
        script=Script(status=500, error_message="Internal Server Error"),
    ),
]


TRANSPORTS = ("httpx", "asyncio")
FAULT_CASES = [
    pytest.param(
        transport,
        fault,
        id=f"{transport}-{fault.name}",
        marks=[pytest.mark.xfail(strict=True, reason=fault.xfail[transport])]
        if transport in fault.xfail
        else [],
    )
    for fault in FAULTS
    for transport in TRANSPORTS
]


@pytest.mark.parametrize(("transport", "fault"), FAULT_CASES)
async def test_fault(tmp_path: Path, transport: str, fault: Fault) -> None:
    async with harness(
        tmp_path, transport, raw=fault.raw, dead_port=fault.dead_port, **fault.settings
    ) as h:
        if fault.script is not None:
            h.fake.enqueue(fault.script)
        seen_before = len(h.fake.requests)
        started = time.monotonic()
        response = await h.chat("trigger", session_id="faulty", route="fault")
        elapsed = time.monotonic() - started
        assert_clean_error(response, fault.expected)
        assert tuple(tokens_of(parse_sse(response.content))) == fault.tokens
        assert elapsed < 10
        if fault.upstream_closed:
            if fault.raw is not None:
                raw = h.extra_upstreams[0]
                for _ in range(150):  # 3 s
                    if raw.client_left_at:
                        break
                    await asyncio.sleep(0.02)
                assert raw.client_left_at, "the app did not hang up on the stalled upstream"
            else:
                upstream = await h.fake.wait_closed(seen_before, timeout=3)
                assert upstream.client_closed
        await check_recovered(h, session_id="faulty")
        outcome = f"error event after {elapsed:.2f} s; recovered, no history"
        record(f"[{transport}] {fault.name}", response, outcome)


async def test_a_deeply_nested_chunk_is_a_malformed_chunk(tmp_path: Path, transport: str) -> None:
    nested = b'data: {"x": ' + b"[" * 100_000 + b"\n\n"
    async with harness(
        tmp_path, transport, raw=RawReply(writes=[SSE_HEAD, nested], then="close")
    ) as h:
        with structlog.testing.capture_logs() as logs:
            response = await h.chat("trigger", session_id="nested", route="fault")
        assert not [entry for entry in logs if entry["event"] == "stream_failed"]
        assert_clean_error(response, "OpenRouter sent a malformed chunk")
        await check_recovered(h, session_id="nested")


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (MALFORMED, "OpenRouter sent a malformed chunk"),
        (
            chunk_event(
                {
                    "error": {"code": 502, "message": "Upstream provider died"},
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
                }
            ),
            "HTTP 502",
        ),
    ],
    ids=["malformed chunk", "in-band error"],
)
async def test_tokens_in_the_same_read_as_an_error_are_relayed(
    tmp_path: Path, transport: str, tail: bytes, expected: str
) -> None:
    """OpenRouter and proxies often put several events in one write; none may be lost."""
    same_read = RawReply(writes=[SSE_HEAD, token_event("Hel") + token_event("lo") + tail])
    async with harness(tmp_path, transport, raw=same_read) as h:
        response = await h.chat("trigger", session_id="same-read", route="fault")
        assert_clean_error(response, expected)
        assert tokens_of(parse_sse(response.content)) == ["Hel", "lo"]
        await check_recovered(h, session_id="same-read")


async def test_an_enormous_single_token_is_relayed_and_memory_returns(
    tmp_path: Path, transport: str
) -> None:
    token = "y" * 5_000_000
    async with harness(tmp_path, transport) as h:
        h.fake.enqueue(Script(tokens=[token]))
        response = await h.chat("big", session_id="huge", route="fault")  # warm this path
        assert tokens_of(parse_sse(response.content)) == [token]
        del response
        assert (await h.http.delete("/sessions/huge", headers=AUTH)).status_code == 204
        await h.settle()
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            h.fake.enqueue(Script(tokens=[token]))
            response = await h.chat("big", session_id="huge2", route="fault")
            events = parse_sse(response.content)
            assert tokens_of(events) == [token]
            assert terminal_event(events).event == "done"
            _, peak = tracemalloc.get_traced_memory()
            outcome = f"relayed whole; peak traced {peak / 1e6:.0f} MB"
            record(f"[{transport}] one 5 MB token", response, outcome)
            del response, events
            assert (await h.http.delete("/sessions/huge2", headers=AUTH)).status_code == 204
            await h.settle()
            gc.collect()
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert after - before < 1_000_000, f"{(after - before) / 1e6:.1f} MB still held"
        await check_recovered(h, session_id="huge")


STORM = 40


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            Script(status=429, headers={"Retry-After": "1"}, error_message="Rate limit exceeded"),
            "OpenRouter rate limit reached; retry after 1 s",
        ),
        (
            Script(status=503, error_message="Service Unavailable"),
            "OpenRouter cannot serve the model right now (HTTP 503)",
        ),
    ],
    ids=["429", "503"],
)
async def test_a_storm_of_upstream_errors(
    tmp_path: Path, transport: str, script: Script, expected: str
) -> None:
    """STORM concurrent requests all refused upstream: each gets one clean error, none hangs,
    and the upstream sees exactly one retry per request (no retry amplification)."""
    async with harness(tmp_path, transport, fault_retries=1) as h:
        h.fake.default_script = script
        before = len(h.fake.chat_requests)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=h.base, timeout=httpx.Timeout(15)) as storm:

            async def one(index: int) -> httpx.Response:
                body = {"message": "storm", "model": "fault", "session_id": f"storm-{index}"}
                return await storm.post("/chat", json=body, headers=AUTH)

            async with asyncio.timeout(15):
                responses = await asyncio.gather(*(one(i) for i in range(STORM)))
        elapsed = time.monotonic() - started
        h.fake.default_script = Script()
        for response in responses:
            error = assert_clean_error(response, expected)
            assert "2 attempts" in error.data
        assert len(h.fake.chat_requests) - before == 2 * STORM
        record(
            f"[{transport}] {STORM} concurrent, all {script.status}",
            responses[0],
            f"all {STORM} got one error event in {elapsed:.2f} s; upstream saw {2 * STORM}",
        )
        await check_recovered(h, session_id="storm-0")


async def test_disconnect_while_waiting_for_the_first_token(tmp_path: Path, transport: str) -> None:
    """The client leaves during keep-alives: upstream closed within ~1 s, nothing saved."""
    async with harness(tmp_path, transport) as h:
        h.fake.enqueue(Script(tokens=["late"], first_token_delay=30, comments_while_waiting=0.1))
        index = len(h.fake.requests)
        keepalives = 0
        with structlog.testing.capture_logs() as logs:
            async with (
                httpx.AsyncClient(base_url=h.base) as http,
                http.stream(
                    "POST",
                    "/chat",
                    json={"message": "wait", "session_id": "left", "model": "fault"},
                    headers=AUTH,
                ) as response,
            ):
                async with asyncio.timeout(5):
                    async for chunk in response.aiter_bytes():
                        keepalives += chunk.count(b": keep-alive")
                        if keepalives >= 2:
                            break
                left_at = time.monotonic()
            upstream = await h.fake.wait_closed(index, timeout=3)
            await h.settle()
        assert upstream.client_closed
        assert upstream.finished_at is not None
        assert upstream.finished_at - left_at < 1.0
        lines = [e for e in logs if e["event"] == "request" and e.get("path") == "/chat"]
        assert lines, logs
        FAULT_MATRIX.append(
            (
                f"[{transport}] client leaves during keep-alives",
                f"{keepalives} keep-alives, then the client closed",
                f"upstream closed after {upstream.finished_at - left_at:.2f} s; "
                f"outcome {lines[-1].get('outcome')!r}; nothing saved",
            )
        )
        await check_recovered(h, session_id="left")


async def test_disconnect_during_keepalives_is_logged_as_a_disconnect(
    tmp_path: Path, transport: str
) -> None:
    async with harness(tmp_path, transport) as h:
        h.fake.enqueue(Script(tokens=["late"], first_token_delay=30, comments_while_waiting=0.1))
        index = len(h.fake.requests)
        with structlog.testing.capture_logs() as logs:
            async with (
                httpx.AsyncClient(base_url=h.base) as http,
                http.stream(
                    "POST",
                    "/chat",
                    json={"message": "wait", "session_id": "left", "model": "fault"},
                    headers=AUTH,
                ) as response,
            ):
                async with asyncio.timeout(5):
                    async for chunk in response.aiter_bytes():
                        if b": keep-alive" in chunk:
                            break
            await h.fake.wait_closed(index, timeout=3)
            await h.settle()
        assert not [e for e in logs if e["event"] == "stream_failed"]
        lines = [e for e in logs if e["event"] == "request" and e.get("path") == "/chat"]
        assert lines[-1].get("outcome") == "client_disconnected", lines[-1]
