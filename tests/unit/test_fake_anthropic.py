"""The loopback fake Anthropic, exercised over real sockets with httpx and with the adapter."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aura_agent.adapters.llm.anthropic import AnthropicChatModel
from aura_agent.domain.errors import ProviderOverloaded, ProviderStreamError, ProviderTimeout
from aura_agent.domain.models import GenerationOptions, Message, Role, StreamEnd, TextDelta, Usage
from aura_agent.testing.fake_anthropic import FakeAnthropic, Script
from tests.adapter_helpers import provider_row

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


def body(text: str = "hello big world", *, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "stream": stream,
        "system": "be brief",
        "messages": [
            {"role": "user", "content": "an older question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": text},
        ],
    }


def parse_events(text: str) -> list[tuple[str, Any]]:
    """(event name, JSON data) for every event of an Anthropic SSE body."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def deltas(events: list[tuple[str, Any]]) -> list[str]:
    return [data["delta"]["text"] for name, data in events if name == "content_block_delta"]


async def post(
    http: httpx.AsyncClient, fake: FakeAnthropic, payload: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.post(fake.messages_url, json=payload or body(), headers=HEADERS)


async def test_a_default_stream_parses_into_the_documented_events(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    resp = await post(http, fake)

    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    events = parse_events(resp.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    assert deltas(events) == ["Echo: ", "hello ", "big ", "world"]
    start = events[0][1]["message"]
    assert (start["role"], start["model"], start["content"]) == ("assistant", "claude-test", [])
    assert start["usage"]["input_tokens"] > 0
    final = events[7][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"] == {"output_tokens": 4}


async def test_script_knobs_in_anthropic_terms(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["a", "b"], finish_reason="length", usage=False, send_done=False))

    events = parse_events((await post(http, fake)).text)

    assert deltas(events) == ["a", "b"]
    assert events[-1][0] == "message_delta"
    assert events[-1][1]["delta"]["stop_reason"] == "max_tokens"
    assert "usage" not in events[-1][1]
    assert "usage" not in events[0][1]["message"]


async def test_pings_are_sent_while_waiting_for_the_first_token(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["x"], first_token_delay=0.15, comments_while_waiting=0.05))

    names = [name for name, _ in parse_events((await post(http, fake)).text)]

    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names.index("content_block_delta") > names.index("ping")


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (429, "rate_limit_error")])
async def test_an_error_status_answers_anthropics_error_json(
    fake: FakeAnthropic, http: httpx.AsyncClient, status: int, kind: str
) -> None:
    fake.enqueue(Script(status=status, error_message="busy", headers={"retry-after": "3"}))

    resp = await post(http, fake)

    assert resp.status_code == status
    assert resp.headers["retry-after"] == "3"
    assert resp.json() == {"type": "error", "error": {"type": kind, "message": "busy"}}


async def test_an_in_band_error_follows_the_tokens_and_ends_the_stream(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    fake.enqueue(Script(tokens=["par", "tial"], in_band_error=error))

    events = parse_events((await post(http, fake)).text)

    assert deltas(events) == ["par", "tial"]
    assert events[-1] == ("error", {"type": "error", "error": error})


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": [{"role": "system", "content": "no"}]}, "role"),
        ({"headers": {"x-api-key": "k"}}, "anthropic-version"),
    ],
)
async def test_requests_the_real_api_refuses_are_400(
    fake: FakeAnthropic, http: httpx.AsyncClient, change: dict[str, Any], complaint: str
) -> None:
    payload = {**body(), **{k: v for k, v in change.items() if k != "headers"}}
    headers = change.get("headers", HEADERS)

    resp = await http.post(fake.messages_url, json=payload, headers=headers)

    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert complaint in resp.json()["error"]["message"]


async def test_client_disconnect_between_tokens_is_recorded(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["tok"] * 500, token_delay=0.02))

    async with http.stream("POST", fake.messages_url, json=body(), headers=HEADERS) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("event: content_block_delta"):
                break
    closed_at = time.monotonic()

    record = await fake.wait_closed(0, timeout=3)
    assert record.client_closed
    assert record.finished_at is not None
    assert record.finished_at - closed_at < 1.0


async def test_requests_are_recorded_with_their_headers(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    await post(http, fake)

    [record] = fake.chat_requests
    assert (record.method, record.path, record.status) == ("POST", "/v1/messages", 200)
    assert record.headers["x-api-key"] == "sk-ant-test"
    assert record.json == body()


async def test_models_and_unknown_routes(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    models = await http.get(fake.models_url)
    missing = await http.get(fake.messages_url)

    assert models.status_code == 200
    assert [m["type"] for m in models.json()["data"]] == ["model", "model"]
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


async def test_a_non_stream_request_gets_a_message(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["Hel", "lo"]))

    resp = await post(http, fake, body(stream=False))

    message = resp.json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "Hello"}]
    assert (message["stop_reason"], message["usage"]["output_tokens"]) == ("end_turn", 2)


# -- with the adapter -----------------------------------------------------------------------------


def adapter(fake: FakeAnthropic, http: httpx.AsyncClient, **overrides: Any) -> AnthropicChatModel:
    settings: dict[str, Any] = {
        "client": http,
        "api_key": "sk-ant-test",
        "url": fake.messages_url,
        "default_model": "claude-test",
        "default_temperature": 0.2,
        "default_max_tokens": 50,
        "first_token_timeout": 2.0,
        **provider_row("anthropic"),
    }
    settings.update(overrides)
    return AnthropicChatModel(**settings)


MESSAGES = [Message(role=Role.SYSTEM, content="sys"), Message(role=Role.USER, content="ping me")]


async def test_the_adapter_streams_from_the_fake(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["Hi", " you"], token_delay=0.01, comments_while_waiting=0.01))
    model = adapter(fake, http)

    events = [e async for e in model.stream(MESSAGES, GenerationOptions())]
    await model.check()

    assert events[:2] == [TextDelta("Hi"), TextDelta(" you")]
    assert isinstance(events[2], Usage)
    assert events[2].completion_tokens == 2
    assert events[3] == StreamEnd(finish_reason="stop")
    assert fake.chat_requests[0].json["system"] == "sys"


async def test_the_adapter_maps_the_fakes_failures(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.enqueue(
        Script(status=529),
        Script(tokens=["a"], in_band_error={"type": "overloaded_error", "message": "Overloaded"}),
        Script(tokens=["a", "b"], drop_after_tokens=True),
        Script(tokens=["late"], first_token_delay=1.0, comments_while_waiting=0.05),
    )
    model = adapter(fake, http, first_token_timeout=0.3)
    expected = [ProviderOverloaded, ProviderOverloaded, ProviderStreamError, ProviderTimeout]

    for error_type in expected:
        with pytest.raises(error_type):
            async for _ in model.stream(MESSAGES, GenerationOptions()):
                pass

    record = await fake.wait_closed(3, timeout=3)
    assert record.client_closed  # the adapter hung up on the model that never started
