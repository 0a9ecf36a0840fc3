"""The whole app against a mocked OpenRouter (pytest-httpx): the design card's integration tests."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import structlog
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from aura_agent.testing.openrouter_mock import OpenRouterMock
from tests.conftest import AppFactory
from tests.support import AUTH, OPENROUTER_KEY, OPENROUTER_URL, parse_sse, terminal_event, tokens_of

PRIMARY_URL = "https://primary.test/api/v1/chat/completions"
BACKUP_URL = "https://backup.test/api/v1/chat/completions"


@pytest.fixture
def openrouter(httpx_mock: HTTPXMock) -> OpenRouterMock:
    return OpenRouterMock(httpx_mock, url=OPENROUTER_URL)


async def _chat(api: AsyncTestClient, body: dict[str, object]) -> httpx.Response:  # type: ignore[type-arg]
    return await api.post("/chat", json=body, headers=AUTH)


async def test_tokens_stream_and_the_payload_is_right(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_stream(["Hel", "lo", " 👋\nbye"])
    app = build_app(system_prompt="Be kind.", model_temperature=0.7)
    async with AsyncTestClient(app=app) as api:
        response = await _chat(api, {"message": "hi", "max_tokens": 50, "temperature": 1.1})
    assert tokens_of(parse_sse(response.content)) == ["Hel", "lo", " 👋\nbye"]
    payload = openrouter.last_payload()
    assert payload["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert payload["stream"] is True
    assert payload["model"] == "deepseek/deepseek-chat"
    assert (payload["max_tokens"], payload["temperature"]) == (50, 1.1)
    request = openrouter.requests()[-1]
    assert request.headers["authorization"] == f"Bearer {OPENROUTER_KEY}"


async def test_the_second_turn_carries_the_first_exactly_once(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_stream(["first ", "reply"])
    openrouter.add_stream(["second"])
    async with AsyncTestClient(app=build_app()) as api:
        await _chat(api, {"message": "one", "session_id": "mem"})
        await _chat(api, {"message": "two", "session_id": "mem"})
    assert openrouter.payloads()[1]["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "first reply"},
        {"role": "user", "content": "two"},
    ]


async def test_an_allowed_model_is_sent_upstream(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_stream(["x"])
    app = build_app(allowed_models="deepseek/deepseek-chat,openai/gpt-4o-mini")
    async with AsyncTestClient(app=app) as api:
        await _chat(api, {"message": "hi", "model": "openai/gpt-4o-mini"})
        refused = await _chat(api, {"message": "hi", "model": "x/y"})
    assert openrouter.last_payload()["model"] == "openai/gpt-4o-mini"
    assert refused.status_code == 400
    assert "deepseek/deepseek-chat, openai/gpt-4o-mini" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, "retry after 7"),
        (500, "OpenRouter"),
        (401, "OpenRouter"),
        (402, "credit"),
    ],
)
async def test_upstream_http_errors_become_error_events(
    build_app: AppFactory, openrouter: OpenRouterMock, status: int, expected: str
) -> None:
    openrouter.add_http_error(status, "upstream says no", retry_after=7 if status == 429 else None)
    async with AsyncTestClient(app=build_app(route_max_retries=0)) as api:
        response = await _chat(api, {"message": "hi"})
    assert response.status_code == 200
    events = parse_sse(response.content)
    assert tokens_of(events) == []
    error = terminal_event(events)
    assert error.event == "error"
    assert expected.lower() in error.data.lower()
    assert OPENROUTER_KEY not in response.text
    assert "openrouter.test" not in response.text


async def test_timeout_before_the_first_token(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_timeout("read")
    async with AsyncTestClient(app=build_app(route_max_retries=0)) as api:
        response = await _chat(api, {"message": "hi"})
    error = terminal_event(parse_sse(response.content))
    assert error.event == "error"
    assert "60" in error.data


async def test_failure_after_the_first_token(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_stream_then_error(["par", "tial"], httpx.ReadTimeout("slow"))
    async with AsyncTestClient(app=build_app()) as api:
        response = await _chat(api, {"message": "hi", "session_id": "after"})
        openrouter.add_stream(["fresh"])
        await _chat(api, {"message": "again", "session_id": "after"})
    events = parse_sse(response.content)
    assert tokens_of(events) == ["par", "tial"]
    assert terminal_event(events).event == "error"
    assert len(openrouter.requests()) == 2, "no retry once a token was sent"
    assert openrouter.payloads()[1]["messages"] == [{"role": "user", "content": "again"}]


async def test_in_band_error_in_a_200_stream(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_in_band_error("Provider returned error", code=400)
    async with AsyncTestClient(app=build_app()) as api:
        response = await _chat(api, {"message": "hi"})
    error = terminal_event(parse_sse(response.content))
    assert error.event == "error"
    assert "Provider returned error" in error.data


async def test_a_truncated_stream_is_an_error(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_truncated_stream(["cut"])
    async with AsyncTestClient(app=build_app()) as api:
        response = await _chat(api, {"message": "hi"})
    events = parse_sse(response.content)
    assert tokens_of(events) == ["cut"]
    assert terminal_event(events).event == "error"


# --- retries and fallbacks through the app -------------------------------------------------

ROUTES = """
default = "primary"

[routes.primary]
provider = "openrouter"
model = "vendor/primary"
base_url = "https://primary.test/api/v1"
fallbacks = ["backup"]
max_retries = {retries}

[routes.backup]
provider = "openrouter"
model = "vendor/backup"
base_url = "https://backup.test/api/v1"
max_retries = 0
"""


def _routed_app(build_app: AppFactory, tmp_path: Path, retries: int = 0) -> object:
    models = tmp_path / "models.toml"
    models.write_text(ROUTES.format(retries=retries), encoding="utf-8")
    return build_app(models_file=str(models), retry_backoff_ms=1)


async def test_primary_503_then_the_backup_answers(
    build_app: AppFactory, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    primary = OpenRouterMock(httpx_mock, url=PRIMARY_URL)
    backup = OpenRouterMock(httpx_mock, url=BACKUP_URL)
    primary.add_http_error(503, "down")
    backup.add_stream(["from ", "backup"])
    app = _routed_app(build_app, tmp_path)  # before capture_logs: create_app configures logging
    with structlog.testing.capture_logs() as logs:
        async with AsyncTestClient(app=app) as api:
            response = await _chat(api, {"message": "hi"})
    assert tokens_of(parse_sse(response.content)) == ["from ", "backup"]
    assert backup.last_payload()["model"] == "vendor/backup"
    line = next(entry for entry in logs if entry["event"] == "request")
    assert (line["route"], line["attempts"], line["model"]) == ("backup", 2, "vendor/backup")


async def test_primary_429_with_retry_after_is_retried_on_the_same_route(
    build_app: AppFactory, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    primary = OpenRouterMock(httpx_mock, url=PRIMARY_URL)
    primary.add_http_error(429, "slow down", retry_after=1)
    primary.add_stream(["after ", "waiting"])
    async with AsyncTestClient(app=_routed_app(build_app, tmp_path, retries=1)) as api:
        response = await _chat(api, {"message": "hi"})
    assert tokens_of(parse_sse(response.content)) == ["after ", "waiting"]
    assert len(primary.requests()) == 2


async def test_no_fallback_once_a_token_was_sent(
    build_app: AppFactory, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    primary = OpenRouterMock(httpx_mock, url=PRIMARY_URL)
    primary.add_stream_then_error(["half"], httpx.RemoteProtocolError("reset"))
    async with AsyncTestClient(app=_routed_app(build_app, tmp_path, retries=2)) as api:
        response = await _chat(api, {"message": "hi"})
    events = parse_sse(response.content)
    assert tokens_of(events) == ["half"]
    assert terminal_event(events).event == "error"
    assert len(httpx_mock.get_requests(url=BACKUP_URL)) == 0
    assert len(primary.requests()) == 1


async def test_all_routes_down_is_one_clear_error(
    build_app: AppFactory, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    primary = OpenRouterMock(httpx_mock, url=PRIMARY_URL)
    backup = OpenRouterMock(httpx_mock, url=BACKUP_URL)
    primary.add_http_error(502, "bad gateway")
    primary.add_http_error(502, "bad gateway")
    backup.add_http_error(529, "overloaded")
    async with AsyncTestClient(app=_routed_app(build_app, tmp_path, retries=1)) as api:
        response = await _chat(api, {"message": "hi"})
    events = parse_sse(response.content)
    assert len(events) == 1
    error = events[0]
    assert error.event == "error"
    assert "every configured model failed" in error.data
    assert "primary, backup" in error.data


async def test_chat_applies_the_seed_defaults_and_v1_sends_only_what_was_set(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    """MODEL_TEMPERATURE / MODEL_MAX_TOKENS are `/chat`'s defaults; `/v1` injects nothing (an
    OpenAI client's unset temperature means the vendor's default, and reasoning models refuse
    `max_tokens`)."""
    openrouter.add_stream(["a"])
    openrouter.add_stream(["b"])
    app = build_app(model_temperature=0.3, model_max_tokens=99)
    async with AsyncTestClient(app=app) as api:
        await _chat(api, {"message": "hi"})
        await api.post(
            "/v1/chat/completions",
            json={
                "model": "deepseek/deepseek-chat",
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers=AUTH,
        )
    chat, v1 = openrouter.payloads()
    assert (chat["temperature"], chat["max_tokens"]) == (0.3, 99)
    assert "temperature" not in v1
    assert "max_tokens" not in v1
