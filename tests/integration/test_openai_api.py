"""`/v1/chat/completions` and `/v1/models` through the app: OpenAI's exact shapes, its error
objects, validation that names the parameter, and stateless versus `X-Session-Id` behaviour."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import structlog
from litestar.testing import AsyncTestClient

from aura_agent.domain.errors import ProviderRateLimited, ProviderUnavailable
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, Role, TextDelta, Usage
from tests.conftest import AppFactory
from tests.support import API_KEY, ScriptedModel, parse_sse, serve_app

ROUTE = "deepseek/deepseek-chat"  # the default route of the test settings
BEARER = {"authorization": f"Bearer {API_KEY}"}
USAGE = Usage(prompt_tokens=12, completion_tokens=2, total_tokens=14, reasoning_tokens=1)


def body(**fields: Any) -> dict[str, Any]:
    return {"model": ROUTE, "messages": [{"role": "user", "content": "hi"}], **fields}


def data_of(response: httpx.Response) -> list[str]:
    """The `data` of every event, in order (keep-alive comments are not events)."""
    return [event.data for event in parse_sse(response.content)]


def chunks_of(response: httpx.Response) -> list[dict[str, Any]]:
    data = data_of(response)
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


# --- streamed ------------------------------------------------------------------------------


async def test_a_streamed_reply_has_openais_chunk_format(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel(["Hel", "lo"]))) as api:
        response = await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = chunks_of(response)
    assert [chunk["choices"][0]["delta"] for chunk in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, None, None, "stop"]
    ids = {chunk["id"] for chunk in chunks}
    assert len(ids) == 1
    assert ids.pop().startswith("chatcmpl-")
    assert {chunk["created"] for chunk in chunks} == {chunks[0]["created"]}
    assert isinstance(chunks[0]["created"], int)
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == ROUTE
        assert chunk["choices"][0]["index"] == 0
        assert "usage" not in chunk  # not asked for


async def test_the_usage_chunk_comes_only_when_asked(build_app: AppFactory) -> None:
    model = ScriptedModel(["a", "b"], usage=USAGE)
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        plain = await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)
        asked = await api.post(
            "/v1/chat/completions",
            json=body(stream=True, stream_options={"include_usage": True}),
            headers=BEARER,
        )

    assert all("usage" not in chunk for chunk in chunks_of(plain))
    chunks = chunks_of(asked)
    *choices, last = chunks
    assert all(chunk["usage"] is None for chunk in choices)
    assert choices[-1]["choices"][0]["finish_reason"] == "stop"
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 2,
        "total_tokens": 14,
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    assert last["id"] == choices[0]["id"]


async def test_a_failure_after_the_first_token_is_an_error_event(build_app: AppFactory) -> None:
    failure = ProviderUnavailable("OpenRouter is unavailable", provider="openrouter", status=502)
    model = ScriptedModel(["Hel", "lo"], fail_with=failure, fail_after=1)
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)

    assert response.status_code == 200
    data = data_of(response)
    assert "[DONE]" not in data
    assert json.loads(data[1])["choices"][0]["delta"] == {"content": "Hel"}
    assert json.loads(data[-1]) == {
        "error": {
            "message": "OpenRouter is unavailable",
            "type": "server_error",
            "param": None,
            "code": "upstream_unavailable",
        }
    }


@pytest.mark.parametrize("stream", [True, False])
async def test_a_rate_limit_before_the_first_token_is_a_429(
    build_app: AppFactory, stream: bool
) -> None:
    failure = ProviderRateLimited("slow down", provider="openrouter", retry_after=2.5)
    model = ScriptedModel(["never"], fail_with=failure, fail_after=0)
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(stream=stream), headers=BEARER)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["error"] == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert model.closed == 1


async def test_a_slow_failure_arrives_as_an_event_after_keep_alives(build_app: AppFactory) -> None:
    """Past the keep-alive interval the response is committed: the error becomes an event."""
    failure = ProviderRateLimited("slow down", provider="openrouter")
    model = ScriptedModel(["x"], fail_with=failure, fail_after=0, first_token_delay=0.25)
    app = build_app(chat_model=model, keepalive_seconds=0.05)
    async with AsyncTestClient(app=app) as api:
        response = await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)

    assert response.status_code == 200
    assert b": keep-alive\n\n" in response.content
    data = data_of(response)
    assert json.loads(data[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert json.loads(data[-1])["error"]["code"] == "rate_limit_exceeded"


async def test_a_slow_first_token_still_streams(build_app: AppFactory) -> None:
    model = ScriptedModel(["late"], first_token_delay=0.2)
    app = build_app(chat_model=model, keepalive_seconds=0.05)
    async with AsyncTestClient(app=app) as api:
        response = await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)

    assert response.content.startswith(b"data: ")  # the role chunk goes out at once
    assert b": keep-alive\n\n" in response.content
    assert [c["choices"][0]["delta"].get("content") for c in chunks_of(response)] == [
        "",
        "late",
        None,
    ]


# --- not streamed --------------------------------------------------------------------------


async def test_a_non_streamed_reply_is_one_chat_completion(build_app: AppFactory) -> None:
    model = ScriptedModel(
        ["Hel", "lo"],
        usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7, cached_tokens=3),
    )
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(), headers=BEARER)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    completion = response.json()
    assert completion["id"].startswith("chatcmpl-")
    assert isinstance(completion.pop("created"), int)
    completion.pop("id")
    assert completion == {
        "object": "chat.completion",
        "model": ROUTE,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "total_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 3},
        },
    }


async def test_a_non_streamed_failure_is_an_http_error(build_app: AppFactory) -> None:
    failure = ProviderUnavailable("down", provider="openrouter", status=502)
    model = ScriptedModel(["a", "b"], fail_with=failure, fail_after=1)
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(), headers=BEARER)

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"


# --- the request ---------------------------------------------------------------------------


async def test_options_and_content_parts_reach_the_model(build_app: AppFactory) -> None:
    model = ScriptedModel(["ok"])
    request = {
        "model": ROUTE,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
            },
        ],
        "temperature": 0.5,
        "max_completion_tokens": 42,
        "top_p": 0.9,
        "tools": [],
        "n": 1,
    }
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=request, headers=BEARER)

    assert response.status_code == 200
    messages, options = model.calls[0]
    assert messages == [
        Message(role=Role.SYSTEM, content="Be brief."),
        Message(role=Role.USER, content="one\ntwo"),
    ]
    assert options == GenerationOptions(model=ROUTE, temperature=0.5, max_tokens=42, top_p=0.9)


@pytest.mark.parametrize(
    ("changes", "param", "code"),
    [
        ({"temperature": 2.5}, "temperature", "invalid_value"),
        ({"temperature": "hot"}, "temperature", "invalid_value"),
        ({"max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"max_tokens": 10**6}, "max_tokens", "integer_above_max_value"),
        ({"max_completion_tokens": 10**6}, "max_completion_tokens", "integer_above_max_value"),
        ({"n": 2}, "n", "unsupported_value"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
        (
            {"messages": [{"role": "function", "content": "x"}]},
            "messages[0].role",
            "unsupported_value",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"messages": [{"role": "user", "content": None}]}, "messages[0].content", "invalid_value"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            "unsupported_value",
        ),
        (
            {"messages": [{"role": "user", "content": "a\x00b"}]},
            "messages[0].content",
            "invalid_value",
        ),
    ],
)
async def test_invalid_requests_name_the_parameter(
    build_app: AppFactory, changes: dict[str, Any], param: str, code: str
) -> None:
    model = ScriptedModel()
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(**changes), headers=BEARER)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]
    assert model.calls == []


async def test_a_missing_model_and_a_bad_body_are_400s(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        missing = await api.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers=BEARER,
        )
        broken = await api.post("/v1/chat/completions", content=b"{nope", headers=BEARER)

    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "model"
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    assert broken.status_code == 400
    assert broken.json()["error"]["type"] == "invalid_request_error"


async def test_an_unknown_model_is_a_404_model_not_found(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.post("/v1/chat/completions", json=body(model="gpt-4o"), headers=BEARER)
        retrieved = await api.get("/v1/models/gpt-4o", headers=BEARER)

    for answer in (response, retrieved):
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert (error["code"], error["param"]) == ("model_not_found", "model")
        assert "gpt-4o" in error["message"]


async def test_a_too_large_body_is_a_413_in_openais_shape(build_app: AppFactory) -> None:
    async with AsyncTestClient(
        app=build_app(chat_model=ScriptedModel(), max_body_bytes=1000)
    ) as api:
        response = await api.post(
            "/v1/chat/completions",
            json=body(messages=[{"role": "user", "content": "x" * 2000}]),
            headers=BEARER,
        )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [BEARER, {"authorization": f"bearer {API_KEY}"}, {"x-api-key": API_KEY}],
    ids=["bearer", "lower-case-scheme", "x-api-key"],
)
async def test_the_key_is_accepted_as_bearer_or_x_api_key(
    build_app: AppFactory, headers: dict[str, str]
) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.get("/v1/models", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"authorization": API_KEY}],
    ids=["none", "wrong-bearer", "wrong-x-api-key", "no-scheme"],
)
async def test_a_missing_or_wrong_key_is_a_401_invalid_api_key(
    build_app: AppFactory, headers: dict[str, str]
) -> None:
    model = ScriptedModel()
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        response = await api.post("/v1/chat/completions", json=body(), headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert API_KEY not in response.text
    assert model.calls == []


# --- models --------------------------------------------------------------------------------


async def test_models_lists_the_configured_routes(build_app: AppFactory, tmp_path: Any) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        """
default = "fast"
[routes.fast]
provider = "demo"
model = "aura/offline-demo"
fallbacks = ["smart/v2"]
[routes."smart/v2"]
provider = "openrouter"
model = "vendor/smart"
""",
        encoding="utf-8",
    )
    async with AsyncTestClient(app=build_app(models_file=str(models))) as api:
        listed = await api.get("/v1/models", headers=BEARER)
        one = await api.get("/v1/models/smart/v2", headers=BEARER)

    assert listed.status_code == 200
    payload = listed.json()
    assert payload["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in payload["data"]] == [
        ("fast", "model", "demo"),
        ("smart/v2", "model", "openrouter"),
    ]
    assert all(isinstance(m["created"], int) for m in payload["data"])
    assert one.json()["id"] == "smart/v2"


# --- stateless versus X-Session-Id ---------------------------------------------------------


async def test_requests_are_stateless_without_a_session_header(build_app: AppFactory) -> None:
    model = ScriptedModel(["reply"])
    conversation = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "two"},
    ]
    app = build_app(chat_model=model, system_prompt="Server rules.")
    async with AsyncTestClient(app=app) as api:
        first = await api.post(
            "/v1/chat/completions", json=body(messages=conversation), headers=BEARER
        )
        again = await api.post(
            "/v1/chat/completions", json=body(messages=conversation), headers=BEARER
        )

    assert first.status_code == again.status_code == 200
    assert "x-session-id" not in first.headers
    expected = [
        Message(role=Role.SYSTEM, content="Server rules."),
        Message(role=Role.SYSTEM, content="Be kind."),
        Message(role=Role.USER, content="one"),
        Message(role=Role.ASSISTANT, content="earlier answer"),
        Message(role=Role.USER, content="two"),
    ]
    assert [call[0] for call in model.calls] == [expected, expected]  # nothing was remembered


async def test_a_session_header_keeps_the_history(build_app: AppFactory) -> None:
    model = ScriptedModel(["reply"], usage=USAGE)
    headers = {**BEARER, "X-Session-Id": "oa-session-1"}
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        first = await api.post(
            "/v1/chat/completions",
            json=body(messages=[{"role": "user", "content": "one"}], stream=True),
            headers=headers,
        )
        second = await api.post(
            "/v1/chat/completions",
            # the client may resend the whole conversation: only the last user message counts
            json=body(
                messages=[
                    {"role": "user", "content": "ignored"},
                    {"role": "user", "content": "two"},
                ]
            ),
            headers=headers,
        )
        stored = await api.get("/sessions/oa-session-1", headers={"x-api-key": API_KEY})

    assert first.headers["x-session-id"] == "oa-session-1"
    assert second.json()["choices"][0]["message"]["content"] == "reply"
    assert model.calls[1][0] == [
        Message(role=Role.USER, content="one"),
        Message(role=Role.ASSISTANT, content="reply", usage=USAGE),
        Message(role=Role.USER, content="two"),
    ]
    assert [m["content"] for m in stored.json()["messages"]] == ["one", "reply", "two", "reply"]


@pytest.mark.parametrize("session_id", ["has space", "x" * 129, "semi;colon"])
async def test_an_invalid_session_header_is_a_400(build_app: AppFactory, session_id: str) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.post(
            "/v1/chat/completions", json=body(), headers={**BEARER, "X-Session-Id": session_id}
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "X-Session-Id"


async def test_a_session_turn_needs_a_user_message(build_app: AppFactory) -> None:
    async with AsyncTestClient(app=build_app(chat_model=ScriptedModel())) as api:
        response = await api.post(
            "/v1/chat/completions",
            json=body(messages=[{"role": "system", "content": "only rules"}]),
            headers={**BEARER, "X-Session-Id": "s"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


async def test_a_store_outage_is_a_503_in_openais_shape(build_app: AppFactory) -> None:
    app = build_app(
        chat_model=ScriptedModel(),
        session_store="redis",
        redis_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
        redis_socket_timeout=0.5,
    )
    async with AsyncTestClient(app=app) as api:
        response = await api.post(
            "/v1/chat/completions", json=body(), headers={**BEARER, "X-Session-Id": "s"}
        )
        stateless = await api.post("/v1/chat/completions", json=body(), headers=BEARER)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "session_store_unavailable"
    assert stateless.status_code == 200  # a stateless request never touches the store


# --- the canonical log line -------------------------------------------------------------------


async def test_the_log_line_reports_route_ttft_and_usage(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(["a"], usage=USAGE))
    with structlog.testing.capture_logs() as logs:
        async with AsyncTestClient(app=app) as api:
            await api.post("/v1/chat/completions", json=body(stream=True), headers=BEARER)
    line = next(entry for entry in logs if entry["event"] == "request")
    assert line["path"] == "/v1/chat/completions"
    assert line["route"] == ROUTE
    assert line["outcome"] == "completed"
    assert line["ttft_ms"] >= 0
    assert (line["prompt_tokens"], line["completion_tokens"], line["reasoning_tokens"]) == (
        12,
        2,
        1,
    )
    assert line["tokens_relayed"] == 1


# --- the client leaving ----------------------------------------------------------------------


class StallingModel(ScriptedModel):
    """Sends one token, then waits for a long time: a reply the client abandons midway."""

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        self.calls.append((list(messages), options))
        try:
            yield TextDelta("first")
            await asyncio.sleep(30)
            yield TextDelta("never")
        finally:
            self.closed += 1


@pytest.mark.parametrize("waiting", [True, False], ids=["before-first-token", "mid-reply"])
async def test_a_client_leaving_closes_the_upstream_stream(
    build_app: AppFactory, waiting: bool
) -> None:
    model = ScriptedModel(["late"], first_token_delay=30) if waiting else StallingModel()
    app = build_app(chat_model=model, keepalive_seconds=0.05)
    with structlog.testing.capture_logs() as logs:
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
            async with http.stream(
                "POST", "/v1/chat/completions", json=body(stream=True), headers=BEARER
            ) as response:
                received = b""
                async for part in response.aiter_bytes():
                    received += part
                    if b'"role":"assistant"' in received and (waiting or b"first" in received):
                        break
            for _ in range(200):
                if model.closed:
                    break
                await asyncio.sleep(0.01)

    assert model.closed == 1
    line = next(entry for entry in logs if entry["event"] == "request")
    assert line["outcome"] == "client_disconnected"
    assert not [entry for entry in logs if entry["event"] == "stream_failed"]


async def test_the_tenant_rate_limit_applies_in_openais_shape(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(), rate_limit_per_minute=1)
    async with AsyncTestClient(app=app) as api:
        first = await api.post("/v1/chat/completions", json=body(), headers=BEARER)
        second = await api.post("/v1/chat/completions", json=body(), headers=BEARER)

    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "requests per minute" in error["message"]
