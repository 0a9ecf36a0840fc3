"""`GET /metrics`: every series is exposed, and each moves by the right amount after requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpx import HTTPXMock

from aura_agent.domain.models import Usage
from aura_agent.testing.openrouter_mock import OpenRouterMock
from tests.conftest import AppFactory
from tests.support import API_KEY, AUTH, OPENROUTER_URL, ScriptedModel, parse_sse, serve_app

ROUTE = "deepseek/deepseek-chat"
BEARER = {"authorization": f"Bearer {API_KEY}"}
SERIES = (
    "aura_requests_total",
    "aura_time_to_first_token_seconds",
    "aura_stream_duration_seconds",
    "aura_active_streams",
    "aura_tokens_relayed_total",
    "aura_usage_tokens_total",
    "aura_upstream_errors_total",
    "aura_upstream_attempts_total",
    "aura_fallbacks_total",
)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when the labelled child does not exist)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def scrape(api: AsyncTestClient[Any], **headers: str) -> str:
    response = await api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_every_series_and_the_process_metrics_are_exposed(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["content-type"].count("charset") == 1
    for name in SERIES:
        assert f"# HELP {name.removesuffix('_total')}" in response.text, name
    assert "process_cpu_seconds_total" in response.text
    assert "python_info" in response.text


async def test_counters_and_histograms_move_by_the_right_amounts(build_app: AppFactory) -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13)
    model = ScriptedModel(["a", "b", "c"], usage=usage)
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        before = await scrape(api)
        for _ in range(2):
            assert (
                await api.post("/chat", json={"message": "hi"}, headers=AUTH)
            ).status_code == 200
        completion = {"model": ROUTE, "messages": [{"role": "user", "content": "x"}]}
        await api.post("/v1/chat/completions", json={**completion, "stream": True}, headers=BEARER)
        await api.post("/v1/chat/completions", json=completion, headers=BEARER)  # not streamed
        await api.post("/chat", json={"message": ""}, headers=AUTH)  # a 400
        after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("aura_requests_total", route="/chat", method="POST", status="200") == 2
    assert moved("aura_requests_total", route="/chat", method="POST", status="400") == 1
    assert (
        moved("aura_requests_total", route="/v1/chat/completions", method="POST", status="200") == 2
    )
    # /chat labels the scripted model's name (it replaces the router); /v1 the requested route
    assert moved("aura_tokens_relayed_total", model_route="scripted-model") == 6
    assert moved("aura_tokens_relayed_total", model_route=ROUTE) == 6
    assert moved("aura_usage_tokens_total", model_route=ROUTE, kind="prompt") == 20
    assert moved("aura_usage_tokens_total", model_route=ROUTE, kind="completion") == 6
    assert moved("aura_usage_tokens_total", model_route="scripted-model", kind="prompt") == 20
    assert moved("aura_time_to_first_token_seconds_count", model_route="scripted-model") == 2
    assert moved("aura_time_to_first_token_seconds_count", model_route=ROUTE) == 2
    assert moved("aura_stream_duration_seconds_count") == 3  # the non-streamed one is not a stream
    assert sample(after, "aura_active_streams") == 0


async def test_the_active_streams_gauge_counts_open_streams(build_app: AppFactory) -> None:
    """On a real server: the gauge is 1 while a reply streams and 0 once it has ended."""
    model = ScriptedModel(["slow"], first_token_delay=0.3)
    async with (
        serve_app(build_app(chat_model=model)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as http,
    ):
        async with http.stream("POST", "/chat", json={"message": "hi"}, headers=AUTH) as reply:
            assert reply.status_code == 200  # headers are here, the first token is not
            during = (await http.get("/metrics")).text
            await reply.aread()
        for _ in range(100):  # the gauge drops right after the last byte left the server
            after = (await http.get("/metrics")).text
            if sample(after, "aura_active_streams") == 0:
                break
            await asyncio.sleep(0.01)

    assert sample(during, "aura_active_streams") == 1
    assert sample(after, "aura_active_streams") == 0


@pytest.fixture
def openrouter(httpx_mock: HTTPXMock) -> OpenRouterMock:
    return OpenRouterMock(httpx_mock, url=OPENROUTER_URL)


async def test_a_failing_upstream_counts_an_upstream_error(
    build_app: AppFactory, openrouter: OpenRouterMock
) -> None:
    openrouter.add_http_error(401, "bad key")  # not retryable: one attempt, then the error event
    openrouter.add_http_error(429, "slow down")
    app = build_app(route_max_retries=0)
    async with AsyncTestClient(app=app) as api:
        before = await scrape(api)
        chat = await api.post("/chat", json={"message": "hi"}, headers=AUTH)
        completion = {"model": ROUTE, "messages": [{"role": "user", "content": "x"}]}
        limited = await api.post("/v1/chat/completions", json=completion, headers=BEARER)
        after = await scrape(api)

    assert parse_sse(chat.content)[-1].event == "error"
    assert limited.status_code == 429
    for kind in ("ProviderAuthError", "ProviderRateLimited"):
        assert sample(after, "aura_upstream_errors_total", provider="openrouter", kind=kind) == 1
        assert sample(before, "aura_upstream_errors_total", provider="openrouter", kind=kind) == 0
    assert sample(after, "aura_requests_total", route="/v1/chat/completions", status="429") == 1


ROUTES = """
default = "primary"

[routes.primary]
provider = "openrouter"
model = "vendor/primary"
base_url = "https://primary.test/api/v1"
fallbacks = ["backup"]
max_retries = 0

[routes.backup]
provider = "openrouter"
model = "vendor/backup"
base_url = "https://backup.test/api/v1"
max_retries = 0
"""


async def test_a_fallback_counts_attempts_and_a_fallback(
    build_app: AppFactory, httpx_mock: HTTPXMock, tmp_path: Path
) -> None:
    primary = OpenRouterMock(httpx_mock, url="https://primary.test/api/v1/chat/completions")
    backup = OpenRouterMock(httpx_mock, url="https://backup.test/api/v1/chat/completions")
    primary.add_stream(["direct"])
    primary.add_http_error(503, "down")
    backup.add_stream(["rescued"])
    models = tmp_path / "models.toml"
    models.write_text(ROUTES, encoding="utf-8")
    async with AsyncTestClient(app=build_app(models_file=str(models), retry_backoff_ms=1)) as api:
        before = await scrape(api)
        await api.post("/chat", json={"message": "hi"}, headers=AUTH)  # primary answers
        after_direct = await scrape(api)
        body = {"model": "primary", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        rescued = await api.post("/v1/chat/completions", json=body, headers=BEARER)
        after = await scrape(api)

    assert b"rescued" in rescued.content
    assert sample(after_direct, "aura_fallbacks_total") == sample(before, "aura_fallbacks_total")
    assert sample(after_direct, "aura_upstream_attempts_total") == 1
    assert sample(after, "aura_fallbacks_total") == 1
    assert sample(after, "aura_upstream_attempts_total") == 3  # 1 + (primary, then backup)
    assert sample(after, "aura_time_to_first_token_seconds_count", model_route="backup") == 1
    assert sample(after, "aura_tokens_relayed_total", model_route="backup") == 1


async def test_session_ids_never_become_label_values(build_app: AppFactory) -> None:
    session_id = "secret-session-4711"
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        await api.post("/chat", json={"message": "hi", "session_id": session_id}, headers=AUTH)
        assert (await api.get(f"/sessions/{session_id}", headers=AUTH)).status_code == 200
        assert (await api.get("/sessions/unknown-one", headers=AUTH)).status_code == 404
        text = await scrape(api)

    assert session_id not in text
    assert "unknown-one" not in text
    assert sample(text, "aura_requests_total", route="/sessions/{session_id}", status="200") == 1
    assert sample(text, "aura_requests_total", route="/sessions/{session_id}", status="404") == 1


async def test_metrics_require_the_metrics_key_when_one_is_set(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(), metrics_api_key="scrape-key-81b2")
    async with AsyncTestClient(app=app) as api:
        missing = await api.get("/metrics")
        internal = await api.get("/metrics", headers=AUTH)  # the API key is not the metrics key
        bearer = await api.get("/metrics", headers={"authorization": "Bearer scrape-key-81b2"})
        header = await api.get("/metrics", headers={"x-api-key": "scrape-key-81b2"})

    assert (missing.status_code, internal.status_code) == (401, 401)
    assert (bearer.status_code, header.status_code) == (200, 200)
    assert "aura_requests_total" in bearer.text


async def test_metrics_can_be_turned_off(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(metrics_enabled="false")) as api:
        assert (await api.get("/metrics")).status_code == 404


async def test_each_app_has_its_own_registry(build_app: AppFactory) -> None:
    first, second = build_app(chat_model=ScriptedModel()), build_app(chat_model=ScriptedModel())
    async with AsyncTestClient(app=first) as one, AsyncTestClient(app=second) as two:
        await one.post("/chat", json={"message": "hi"}, headers=AUTH)
        assert sample(await scrape(one), "aura_requests_total", route="/chat") == 1
        assert sample(await scrape(two), "aura_requests_total", route="/chat") == 0
