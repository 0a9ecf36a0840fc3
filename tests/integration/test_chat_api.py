"""The HTTP contract of the seed: health, auth, validation, SSE framing, memory, CORS, logs."""

from __future__ import annotations

import uuid

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient

from aura_agent.domain.errors import ProviderRateLimited
from tests.conftest import AppFactory
from tests.support import API_KEY, AUTH, ScriptedModel, parse_sse, terminal_event, tokens_of


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(["Hello", ",", " world", "!"])


@pytest.fixture
async def api(build_app: AppFactory, model: ScriptedModel) -> AsyncTestClient[Litestar]:
    async with AsyncTestClient(app=build_app(chat_model=model)) as test_client:
        yield test_client  # type: ignore[misc]


async def test_health_matches_the_seed(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["model"] == "deepseek/deepseek-chat"
    assert body["version"]


async def test_ready_reports_each_dependency(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"model": "ok", "session_store": "ok"}}


async def test_ready_names_the_failing_dependency(build_app: AppFactory) -> None:
    broken = ScriptedModel(fail_with=ProviderRateLimited("provider down", provider="scripted"))
    async with AsyncTestClient(app=build_app(chat_model=broken)) as test_client:
        response = await test_client.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["model"].startswith("failed")
    assert "provider down" in checks["model"]
    assert checks["session_store"] == "ok"


async def test_chat_streams_tokens_then_done(api: AsyncTestClient[Litestar]) -> None:
    response = await api.post("/chat", json={"message": "Hi"}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    uuid.UUID(response.headers["x-session-id"])
    assert response.headers["x-request-id"]
    events = parse_sse(response.content)
    assert tokens_of(events) == ["Hello", ",", " world", "!"]
    done = terminal_event(events)
    assert (done.event, done.data) == ("done", "[DONE]")
    assert response.text.endswith("event: done\ndata: [DONE]\n\n")


async def test_session_memory_sends_the_first_turn_once(
    api: AsyncTestClient[Litestar], model: ScriptedModel
) -> None:
    first = await api.post("/chat", json={"message": "one", "session_id": "s-1"}, headers=AUTH)
    assert first.headers["x-session-id"] == "s-1"
    await api.post("/chat", json={"message": "two", "session_id": "s-1"}, headers=AUTH)
    sent, _ = model.calls[1]
    assert [(m.role.value, m.content) for m in sent] == [
        ("user", "one"),
        ("assistant", "Hello, world!"),
        ("user", "two"),
    ]


async def test_sessions_do_not_mix(api: AsyncTestClient[Litestar], model: ScriptedModel) -> None:
    await api.post("/chat", json={"message": "for a", "session_id": "a"}, headers=AUTH)
    await api.post("/chat", json={"message": "for b", "session_id": "b"}, headers=AUTH)
    sent, _ = model.calls[1]
    assert [m.content for m in sent] == ["for b"]


async def test_multiline_and_unicode_tokens_survive(build_app: AppFactory) -> None:
    tokens = ["line one\nline two", "\r\n", "naïve ☕ 漢字 🚀", "tab\there", "\n\n"]
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel(tokens))) as api:
        response = await api.post("/chat", json={"message": "x"}, headers=AUTH)
    assert tokens_of(parse_sse(response.content)) == [t.replace("\r\n", "\n") for t in tokens]


async def test_empty_tokens_are_not_sent(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel(["", "a", ""]))) as api:
        response = await api.post("/chat", json={"message": "x"}, headers=AUTH)
    assert tokens_of(parse_sse(response.content)) == ["a"]


async def test_failure_after_first_token_ends_with_an_error_event(build_app: AppFactory) -> None:
    model = ScriptedModel(
        ["partial"],
        fail_with=ProviderRateLimited("rate limited; retry after 3 s", provider="x"),
        fail_after=1,
    )
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/chat", json={"message": "x", "session_id": "f"}, headers=AUTH)
        history = await api.post("/chat", json={"message": "y", "session_id": "f"}, headers=AUTH)
    events = parse_sse(response.content)
    assert tokens_of(events) == ["partial"]
    error = terminal_event(events)
    assert error.event == "error"
    assert "retry after 3 s" in error.data
    assert history.status_code == 200
    sent, _ = model.calls[1]
    assert [m.content for m in sent] == ["y"], "a failed turn must not be remembered"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-api-key": API_KEY + "x"}])
async def test_missing_or_wrong_key_is_401(
    api: AsyncTestClient[Litestar], model: ScriptedModel, headers: dict[str, str]
) -> None:
    response = await api.post("/chat", json={"message": "hi"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert "x-api-key" in body["detail"]
    assert not model.calls


async def test_auth_is_checked_before_the_body(api: AsyncTestClient[Litestar]) -> None:
    response = await api.post("/chat", content=b"{broken", headers={"content-type": "text/plain"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{broken", "body"),
        (b'{"message": "   "}', "message"),
        (b'{"message": ""}', "message"),
        (b'{"message": "' + b"x" * 2001 + b'"}', "message"),
        (b'{"message": "hi", "session_id": "a b"}', "session_id"),
        (b'{"message": "hi", "session_id": "' + b"s" * 129 + b'"}', "session_id"),
        (b'{"message": "hi", "temperature": 2.01}', "temperature"),
        (b'{"message": "hi", "max_tokens": 0}', "max_tokens"),
        (b'{"message": "hi", "max_tokens": 4097}', "max_tokens"),
        (b'{"message": "hi", "model": "other/model"}', "model"),
        (b'{"message": ["hi"]}', "message"),
    ],
)
async def test_invalid_requests_are_400_naming_the_field(
    build_app: AppFactory, body: bytes, field: str
) -> None:
    model = ScriptedModel()
    app = build_app(chat_model=model, max_message_chars=2000, max_tokens_limit=4096)
    async with AsyncTestClient(app=app) as api:
        response = await api.post(
            "/chat", content=body, headers={**AUTH, "content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["field"] == field
    assert field in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    assert not model.calls


async def test_oversized_body_is_413(build_app: AppFactory) -> None:
    model = ScriptedModel()
    async with AsyncTestClient(app=build_app(chat_model=model, max_body_bytes=1024)) as api:
        response = await api.post(
            "/chat",
            content=b'{"message": "' + b"x" * 2000 + b'"}',
            headers={**AUTH, "content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert not model.calls


async def test_request_id_is_echoed_when_valid(api: AsyncTestClient[Litestar]) -> None:
    response = await api.get("/health", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    bad = await api.get("/health", headers={"x-request-id": "bad id;drop"})
    assert bad.headers["x-request-id"] != "bad id;drop"


async def test_cors_preflight_is_answered(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(), cors_origins="http://front.example")
    async with AsyncTestClient(app=app) as api:
        response = await api.options(
            "/chat",
            headers={
                "origin": "http://front.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-api-key, content-type",
            },
        )
        denied = await api.options(
            "/chat",
            headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "http://front.example"
    assert "x-api-key" in response.headers["access-control-allow-headers"].lower()
    assert denied.headers.get("access-control-allow-origin") != "http://evil.example"


async def test_canonical_log_line_has_the_request_facts(api: AsyncTestClient[Litestar]) -> None:
    with structlog.testing.capture_logs() as logs:
        await api.post("/chat", json={"message": "Hi", "session_id": "log-1"}, headers=AUTH)
    lines = [entry for entry in logs if entry["event"] == "request" and entry["path"] == "/chat"]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 200
    assert line["session_id"] == "log-1"
    assert line["outcome"] == "completed"
    assert line["tokens_relayed"] == 4
    assert line["ttft_ms"] >= 0
    assert line["duration_ms"] >= line["ttft_ms"]
    assert line["request_id"]
    assert API_KEY not in repr(logs)
