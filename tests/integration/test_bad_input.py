"""Hostile and broken input at the HTTP edge: each is a clear 4xx problem naming what is wrong,
and nothing reaches the model or the session store.

Most cases run in-process (AsyncTestClient); what depends on the HTTP server itself (chunked
bodies, a declared-huge body, huge headers) runs through a real server on loopback.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import structlog
from dependency_injector import providers
from litestar import Litestar
from litestar.testing import AsyncTestClient

from aura_agent.adapters.session_store.memory import MemorySessionStore
from aura_agent.app import create_app
from aura_agent.container import Container
from aura_agent.domain.models import Message
from aura_agent.http.auth import ApiKeyGuard
from aura_agent.http.request_context import _request_id_from
from tests.server_process import running_server
from tests.support import API_KEY, AUTH, ScriptedModel, make_settings, parse_sse, serve_app

MAX_BODY = 4096
PROBLEM = "application/problem+json"


class SpyStore:
    """A memory store that records every call, to prove a refused request never touched it."""

    def __init__(self) -> None:
        self._store = MemorySessionStore(max_sessions=100, max_messages=100, ttl_seconds=600)
        self.calls: list[tuple[str, str]] = []

    async def load(self, session_id: str) -> list[Message]:
        self.calls.append(("load", session_id))
        return await self._store.load(session_id)

    async def append_turn(self, session_id: str, user: Message, assistant: Message) -> None:
        self.calls.append(("append_turn", session_id))
        await self._store.append_turn(session_id, user, assistant)

    async def delete(self, session_id: str) -> bool:
        self.calls.append(("delete", session_id))
        return await self._store.delete(session_id)

    async def check(self) -> None:
        await self._store.check()


class Edge:
    """The app with a scripted model and a spy store, and a client on it."""

    def __init__(self, client: AsyncTestClient[Litestar], model: ScriptedModel, store: SpyStore):
        self.client = client
        self.model = model
        self.store = store

    def assert_untouched(self) -> None:
        assert self.model.calls == [], "the model was called"
        assert self.store.calls == [], f"the store was called: {self.store.calls}"


def build(model: ScriptedModel, store: SpyStore, **overrides: Any) -> Litestar:
    settings = make_settings(**{"max_body_bytes": MAX_BODY, **overrides})
    container = Container(settings=settings)
    container.chat_model.override(providers.Object(model))
    container.session_store.override(providers.Object(store))
    return create_app(settings, container)


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    model, store = ScriptedModel(), SpyStore()
    async with AsyncTestClient(app=build(model, store)) as client:
        yield Edge(client, model, store)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    if field is not None:
        assert problem["field"] == field
        assert field in problem["detail"]
    for leak in ("Traceback", "RecursionError", "UnicodeDecodeError", API_KEY):
        assert leak not in response.text
    return problem


async def post_raw(edge: Edge, body: bytes, content_type: str | None = "application/json") -> Any:
    headers = dict(AUTH)
    if content_type is not None:
        headers["content-type"] = content_type
    return await edge.client.post("/chat", content=body, headers=headers)


# -- size -------------------------------------------------------------------------------------


async def test_an_oversized_body_is_413(edge: Edge) -> None:
    body = b'{"message": "' + b"x" * (MAX_BODY * 4) + b'"}'
    problem = assert_problem(await post_raw(edge, body), 413)
    assert "larger than" in problem["detail"]
    edge.assert_untouched()


async def test_an_oversized_chunked_body_is_413_through_a_real_server() -> None:
    """No Content-Length to check up front: the limit must hold while the body is read."""
    model, store = ScriptedModel(), SpyStore()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    async with serve_app(build(model, store)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/chat", content=chunks(), headers={**AUTH, "content-type": "application/json"}
        )
        assert_problem(response, 413)
        assert (await http.get("/health")).status_code == 200
    assert model.calls == []
    assert store.calls == []


async def test_a_declared_huge_body_is_refused_before_it_is_sent() -> None:
    """Content-Length: 1 GB and no body: 413 at once, the server does not wait for the bytes."""
    model, store = ScriptedModel(), SpyStore()
    async with serve_app(build(model, store)) as base:
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /chat HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"x-api-key: " + API_KEY.encode() + b"\r\nContent-Length: 1000000000\r\n\r\n{"
            )
            await writer.drain()
            async with asyncio.timeout(5):
                status_line = await reader.readline()
        finally:
            writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert model.calls == []
    assert store.calls == []


# -- JSON and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[" * 100_000, "body"),
        (b"{" * 100_000, "body"),
        (b'{"message": ' + b"[" * 100_000, "message"),
        (b'{"message": "hi", "extra": ' + b"[" * 100_000, "body"),
        (b'{"message": "hi", "extra": ' + b'{"a": ' * 50_000, "body"),
    ],
    ids=["100k [", "100k {", "100k [ in message", "100k [ in an ignored field", "50k objects"],
)
async def test_deeply_nested_json_is_a_clean_400(edge: Edge, body: bytes, field: str) -> None:
    big = build(edge.model, edge.store, max_body_bytes=1_000_000)
    async with AsyncTestClient(app=big) as client:
        response = await client.post(
            "/chat", content=body, headers={**AUTH, "content-type": "application/json"}
        )
    assert_problem(response, 400, field)
    edge.assert_untouched()


@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "caf\xc3"}',  # a truncated sequence inside the message
        b'{"message": "\xff\xfe"}',
        b'{"message": "hi", "extra": "\xff"}',  # in a field the decoder skips
        b'{"\xff": 1, "message": "hi"}',  # in a key
        b'{"message": "\xed\xa0\x80"}',  # an encoded surrogate, invalid in UTF-8
    ],
    ids=["truncated", "ff fe", "ignored field", "key", "surrogate"],
)
async def test_invalid_utf8_is_a_400_naming_the_body(edge: Edge, body: bytes) -> None:
    problem = assert_problem(await post_raw(edge, body), 400, "body")
    assert "UTF-8" in problem["detail"]
    edge.assert_untouched()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"message": "a\\u0000b"}', "message"),  # NUL, escaped: valid JSON, refused text
        (b'{"message": "bell\\u0007"}', "message"),
        (b'{"message": "\\u001b[31mred"}', "message"),  # a terminal escape sequence
        (b'{"message": "a\x01b"}', "body"),  # a raw control byte is not JSON at all
        (b'{"message": "\\ud800"}', "body"),  # a lone surrogate escape
        (b'{"message": "x", "temperature": NaN}', "body"),
        (b"\xef\xbb\xbf", "body"),  # a byte order mark and nothing else
    ],
    ids=["NUL", "BEL", "ESC", "raw control byte", "lone surrogate", "NaN", "BOM only"],
)
async def test_control_characters_and_non_text_are_refused(
    edge: Edge, body: bytes, field: str
) -> None:
    problem = assert_problem(await post_raw(edge, body), 400, field)
    if field == "message":
        assert "control character" in problem["detail"]
    edge.assert_untouched()


async def test_tabs_and_line_breaks_are_ordinary_text(edge: Edge) -> None:
    response = await post_raw(edge, b'{"message": "line one\\r\\n\\tline two\\n"}')
    assert response.status_code == 200
    assert parse_sse(response.content)[-1].event == "done"
    assert edge.model.calls[0][0][-1].content == "line one\r\n\tline two\n"


# -- content type -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
    ],
)
async def test_a_body_declared_as_something_else_is_415(edge: Edge, content_type: str) -> None:
    response = await post_raw(edge, b'{"message": "hi"}', content_type)
    problem = assert_problem(response, 415, "content-type")
    assert "application/json" in problem["detail"]
    edge.assert_untouched()


async def test_form_data_is_415(edge: Edge) -> None:
    response = await edge.client.post("/chat", data={"message": "hi"}, headers=AUTH)
    assert_problem(response, 415, "content-type")
    edge.assert_untouched()


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.aura+json",
    ],
)
async def test_json_or_no_declared_type_is_accepted(edge: Edge, content_type: str | None) -> None:
    response = await post_raw(edge, b'{"message": "hi"}', content_type)
    assert response.status_code == 200, response.text
    assert parse_sse(response.content)[-1].event == "done"


async def test_the_key_is_checked_before_the_content_type(edge: Edge) -> None:
    response = await edge.client.post("/chat", content=b"x", headers={"content-type": "text/plain"})
    assert_problem(response, 401)


# -- session ids ------------------------------------------------------------------------------

BAD_SESSION_IDS = [
    "a:b",  # a Redis key separator
    "*",  # a Redis glob
    "a*",
    "{x}",  # a Redis Cluster hash tag
    "a\n",  # Python's `$` matches before a final newline
    "\n",
    "a\r\nSet-Cookie: x=1",  # header injection through X-Session-Id
    "a b",
    "../etc",
    "é",
    "\uff53\uff45\uff53\uff53\uff49\uff4f\uff4e",  # "session" in full-width letters
    "s" * 129,
    "",
]


@pytest.mark.parametrize("session_id", BAD_SESSION_IDS, ids=repr)
async def test_a_session_id_that_could_break_a_key_is_400_on_chat(
    edge: Edge, session_id: str
) -> None:
    response = await edge.client.post(
        "/chat", json={"message": "hi", "session_id": session_id}, headers=AUTH
    )
    problem = assert_problem(response, 400, "session_id")
    assert "A-Z" in problem["detail"]
    assert "x-session-id" not in response.headers
    edge.assert_untouched()


@pytest.mark.parametrize("session_id", ["a:b", "*", "{x}", "a\n", "é", "s" * 129], ids=repr)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_session_id_that_could_break_a_key_is_400_on_sessions(
    edge: Edge, session_id: str, method: str
) -> None:
    response = await edge.client.request(
        method, "/sessions/" + quote(session_id, safe=""), headers=AUTH
    )
    assert_problem(response, 400, "session_id")
    edge.assert_untouched()


async def test_the_longest_valid_session_id_reaches_the_store(edge: Edge) -> None:
    session_id = "A-z_0" * 25 + "abc"
    assert len(session_id) == 128
    response = await edge.client.post(
        "/chat", json={"message": "hi", "session_id": session_id}, headers=AUTH
    )
    assert response.status_code == 200
    assert response.headers["x-session-id"] == session_id
    assert ("load", session_id) in edge.store.calls


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/chat", "POST"),
        ("PUT", "/chat", "POST"),
        ("DELETE", "/chat", "POST"),
        ("POST", "/health", "GET"),
        ("PATCH", "/sessions/abc", "GET"),
    ],
)
async def test_a_wrong_method_is_a_405_problem(
    edge: Edge, method: str, path: str, allowed: str
) -> None:
    response = await edge.client.request(method, path, headers=AUTH)
    problem = assert_problem(response, 405)
    assert method in problem["detail"]
    assert path in problem["detail"]
    assert allowed in response.headers["allow"]
    assert allowed in problem["detail"]
    edge.assert_untouched()


@pytest.mark.parametrize("path", ["/nope", "/chat/extra", "/sessions", "/sessions/a/b", "/%00"])
async def test_an_unknown_path_is_a_404_problem(edge: Edge, path: str) -> None:
    response = await edge.client.get(path, headers=AUTH)
    problem = assert_problem(response, 404)
    assert "no route" in problem["detail"]
    edge.assert_untouched()


async def test_a_long_unknown_path_is_not_echoed_in_full(edge: Edge) -> None:
    response = await edge.client.get("/" + "p" * 5000, headers=AUTH)
    problem = assert_problem(response, 404)
    assert len(problem["detail"]) < 300


async def test_routing_errors_carry_a_request_id(edge: Edge) -> None:
    for response in (await edge.client.get("/nope"), await edge.client.get("/chat")):
        assert response.json().get("request_id")
        assert response.headers.get("x-request-id") == response.json()["request_id"]


async def test_routing_errors_get_a_canonical_log_line(edge: Edge) -> None:
    with structlog.testing.capture_logs() as logs:
        missing = await edge.client.get("/nope")
        wrong_method = await edge.client.get("/chat")
    lines = [log for log in logs if log["event"] == "request"]
    assert [(line["path"], line["status"]) for line in lines] == [("/nope", 404), ("/chat", 405)]
    assert [line["request_id"] for line in lines] == [
        missing.headers["x-request-id"],
        wrong_method.headers["x-request-id"],
    ]


# -- headers, through the real `aura-agent serve` ---------------------------------------------


async def _raw_request(port: int, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(4096)
    except ConnectionError:
        return b""
    finally:
        writer.close()


def _head_with(header_bytes: int, count: int = 1) -> bytes:
    head = b"GET /health HTTP/1.1\r\nHost: test\r\n"
    for index in range(count):
        head += b"X-Big-%d: " % index + b"a" * header_bytes + b"\r\n"
    return head + b"\r\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "server"


@pytest.mark.e2e
async def test_huge_headers_do_not_crash_the_server(workdir: Path) -> None:
    async with running_server(workdir, INTERNAL_API_KEY=API_KEY) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        for size, count in ((70_000, 1), (2_000_000, 1), (8_000, 500)):
            answer = await _raw_request(port, _head_with(size, count))
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:100]
            assert not answer.startswith(b"HTTP/1.1 5"), answer[:100]
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/health")).status_code == 200
            response = await http.post("/chat", json={"message": "still here?"}, headers=AUTH)
            assert parse_sse(response.content)[-1].event == "done"
        assert server.process.poll() is None


@pytest.mark.e2e
async def test_a_huge_header_is_refused_with_a_4xx(workdir: Path) -> None:
    async with running_server(workdir, INTERNAL_API_KEY=API_KEY) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        answer = await _raw_request(port, _head_with(1_000_000))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]


@pytest.mark.e2e
async def test_the_header_limit_counts_all_headers_and_spares_heads_below_it(
    workdir: Path,
) -> None:
    async with running_server(workdir, INTERNAL_API_KEY=API_KEY, MAX_HEADER_BYTES="8192") as srv:
        port = int(srv.base_url.rsplit(":", 1)[1])
        below = await _raw_request(port, _head_with(6_000))
        many_small = await _raw_request(port, _head_with(500, count=20))
        async with httpx.AsyncClient(base_url=srv.base_url) as http:
            after = await http.get("/health")
    assert below.startswith(b"HTTP/1.1 200"), below[:100]
    assert many_small.startswith(b"HTTP/1.1 431"), many_small[:100]
    assert b"application/problem+json" in many_small
    assert after.status_code == 200


# -- small edge hardening ---------------------------------------------------------------------


@pytest.mark.parametrize("candidate", [b"abc\n", b"abc\r\n", b"", b"a b", b"x" * 129])
def test_an_invalid_request_id_is_replaced_not_echoed(candidate: bytes) -> None:
    scope: Any = {"headers": [(b"x-request-id", candidate)]}
    request_id = _request_id_from(scope)
    assert request_id != candidate.decode("latin-1")
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_a_valid_request_id_is_kept() -> None:
    scope: Any = {"headers": [(b"x-request-id", b"trace-1.2:3")]}
    assert _request_id_from(scope) == "trace-1.2:3"


def test_an_empty_configured_key_admits_nobody() -> None:
    guard = ApiKeyGuard("")
    assert not guard.is_valid("")
    assert not guard.is_valid(None)
    assert ApiKeyGuard(API_KEY).is_valid(API_KEY)
