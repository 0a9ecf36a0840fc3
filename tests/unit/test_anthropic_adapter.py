"""The Anthropic Messages adapter: request shape, event translation and Anthropic's error kinds.

The behaviour every adapter shares is in test_chat_model_contract.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.anthropic import AnthropicChatModel, to_anthropic_messages
from aura_agent.domain.errors import (
    ChatModelError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderPaymentRequired,
    ProviderRateLimited,
    ProviderStreamError,
    ProviderUnavailable,
    UnsupportedOption,
)
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    ResponseFormat,
    Role,
    StreamEnd,
    TextDelta,
    Tool,
    Usage,
)
from aura_agent.testing.anthropic_mock import (
    DEFAULT_URL,
    PING,
    AnthropicMock,
    anthropic_event,
    anthropic_sse_events,
    anthropic_usage,
)
from tests.adapter_helpers import (
    NO_OPTIONS,
    provider_row,
    stream_events,
    stream_until_error,
    texts,
)

API_KEY = "sk-ant-api03-unit0123456789abcdefABCDEF"
CONVERSATION = [
    Message(role=Role.SYSTEM, content="You are Aura."),
    Message(role=Role.USER, content="Hi"),
    Message(role=Role.ASSISTANT, content="Hello!"),
    Message(role=Role.SYSTEM, content="Answer in French."),
    Message(role=Role.USER, content="How are you?"),
]


@pytest.fixture
def anthropic_mock(httpx_mock: HTTPXMock) -> AnthropicMock:
    return AnthropicMock(httpx_mock)


def make_model(client: httpx.AsyncClient, **overrides: Any) -> AnthropicChatModel:
    kwargs: dict[str, Any] = {
        "client": client,
        "api_key": API_KEY,
        "default_model": "claude-3-5-haiku-latest",
        "default_temperature": 0.2,
        "default_max_tokens": 1024,
        "first_token_timeout": 5.0,
        **provider_row("anthropic"),
        "url": DEFAULT_URL,
    }
    kwargs.update(overrides)
    return AnthropicChatModel(**kwargs)


@pytest.fixture
def model(http_client: httpx.AsyncClient) -> AnthropicChatModel:
    return make_model(http_client)


async def collect(
    model: AnthropicChatModel,
    messages: list[Message] = CONVERSATION,
    options: GenerationOptions = NO_OPTIONS,
) -> list[ChatEvent]:
    return await stream_events(model, messages, options)


async def collect_until_error(model: AnthropicChatModel) -> tuple[list[ChatEvent], ChatModelError]:
    return await stream_until_error(model, CONVERSATION)


def event(payload: dict[str, Any]) -> bytes:
    return anthropic_event(payload)


def text_delta(text: str, index: int = 0) -> bytes:
    return event(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        }
    )


def message_start(usage: dict[str, int] | None = None) -> bytes:
    message: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    if usage is not None:
        message["usage"] = usage
    return event({"type": "message_start", "message": message})


def message_delta(stop_reason: str | None, usage: dict[str, int] | None = None) -> bytes:
    payload: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason}}
    if usage is not None:
        payload["usage"] = usage
    return event(payload)


MESSAGE_STOP = event({"type": "message_stop"})


# -- the request ----------------------------------------------------------------------------------


async def test_request_body(model: AnthropicChatModel, anthropic_mock: AnthropicMock) -> None:
    anthropic_mock.add_stream(["a"])

    await collect(model)

    assert anthropic_mock.last_payload() == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How are you?"},
        ],
        "stream": True,
        "temperature": 0.2,
        "system": "You are Aura.\n\nAnswer in French.",
    }


async def test_request_headers(model: AnthropicChatModel, anthropic_mock: AnthropicMock) -> None:
    anthropic_mock.add_stream(["a"])

    await collect(model)

    request = anthropic_mock.requests()[-1]
    assert str(request.url) == DEFAULT_URL
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers


async def test_anthropic_version_is_configurable(
    http_client: httpx.AsyncClient, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"])

    await collect(make_model(http_client, anthropic_version="2099-01-01"))

    assert anthropic_mock.requests()[-1].headers["anthropic-version"] == "2099-01-01"


async def test_options_override_defaults_and_max_tokens_is_always_sent(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"])
    anthropic_mock.add_stream(["b"])

    await collect(model, options=GenerationOptions(model="claude-sonnet-4-5", max_tokens=64))
    await collect(model, options=GenerationOptions(temperature=0.9))

    first, second = anthropic_mock.payloads()
    assert (first["model"], first["max_tokens"], first["temperature"]) == (
        "claude-sonnet-4-5",
        64,
        0.2,
    )
    assert (second["max_tokens"], second["temperature"]) == (1024, 0.9)


async def test_temperature_is_clamped_to_anthropics_range(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"])

    await collect(model, options=GenerationOptions(temperature=1.7))

    assert anthropic_mock.last_payload()["temperature"] == 1.0


async def test_no_system_field_without_system_messages(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"])

    await collect(model, [Message(role=Role.USER, content="Hi")])

    assert "system" not in anthropic_mock.last_payload()


def test_system_messages_leave_the_list_and_same_role_turns_merge() -> None:
    system, turns = to_anthropic_messages(
        [
            Message(role=Role.USER, content="one"),
            Message(role=Role.SYSTEM, content="rule"),
            Message(role=Role.USER, content="two"),
            Message(role=Role.ASSISTANT, content="a1"),
            Message(role=Role.ASSISTANT, content="a2"),
            Message(role=Role.USER, content="three"),
        ]
    )

    assert system == "rule"
    assert turns == [
        {"role": "user", "content": "one\n\ntwo"},
        {"role": "assistant", "content": "a1\n\na2"},
        {"role": "user", "content": "three"},
    ]


def test_blank_messages_are_left_out() -> None:
    system, turns = to_anthropic_messages(
        [
            Message(role=Role.SYSTEM, content="  "),
            Message(role=Role.USER, content="q1"),
            Message(role=Role.ASSISTANT, content=""),
            Message(role=Role.USER, content="q2"),
        ]
    )

    assert system == ""
    assert turns == [{"role": "user", "content": "q1\n\nq2"}]


def test_an_empty_key_is_refused(http_client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="API key"):
        make_model(http_client, api_key="")


# -- events ---------------------------------------------------------------------------------------


async def test_pings_and_unknown_events_and_non_text_deltas_are_ignored(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    thinking = {"type": "thinking", "thinking": ""}
    anthropic_mock.add_sse(
        [
            message_start({"input_tokens": 5, "output_tokens": 1}),
            PING,
            event({"type": "content_block_start", "index": 0, "content_block": thinking}),
            event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "let me think"},
                }
            ),
            event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "abc"},
                }
            ),
            event({"type": "content_block_stop", "index": 0}),
            event({"type": "brand_new_event", "payload": {"x": [1, 2]}}),
            text_delta("Hel", 1),
            PING,
            text_delta("lo", 1),
            event(
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": '{"q": '},
                }
            ),
            message_delta("end_turn", {"output_tokens": 9}),
            MESSAGE_STOP,
        ]
    )

    events = await collect(model)

    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        Usage(prompt_tokens=5, completion_tokens=9, total_tokens=14),
        StreamEnd(finish_reason="stop"),
    ]


async def test_usage_combines_start_and_cumulative_delta_counts(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_sse(
        [
            message_start(
                {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 1,
                }
            ),
            text_delta("a"),
            message_delta(None, {"output_tokens": 7}),
            text_delta("b"),
            message_delta("end_turn", {"output_tokens": 15}),  # cumulative: replaces 7
            MESSAGE_STOP,
        ]
    )

    events = await collect(model)

    assert [e for e in events if isinstance(e, Usage)] == [
        Usage(prompt_tokens=130, completion_tokens=15, total_tokens=145, cached_tokens=100)
    ]


async def test_input_counts_in_message_delta_replace_the_start_ones(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_sse(
        [
            message_start({"input_tokens": 3, "output_tokens": 1}),
            text_delta("a"),
            message_delta("end_turn", {"input_tokens": 40, "output_tokens": 2}),
            MESSAGE_STOP,
        ]
    )

    assert (await collect(model))[-2] == Usage(
        prompt_tokens=40, completion_tokens=2, total_tokens=42
    )


async def test_no_usage_reported_means_no_usage_event(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"], usage=None)

    assert await collect(model) == [TextDelta("a"), StreamEnd(finish_reason="stop")]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),  # unknown to the mapping: passed on as it is
    ],
)
async def test_stop_reason_mapping(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock, stop_reason: str, finish_reason: str
) -> None:
    anthropic_mock.add_stream(["a"], stop_reason=stop_reason)

    assert (await collect(model))[-1] == StreamEnd(finish_reason=finish_reason)


async def test_text_in_content_block_start_is_kept(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    block = {"type": "text", "text": "Pre"}
    anthropic_mock.add_sse(
        [
            message_start(),
            event({"type": "content_block_start", "index": 0, "content_block": block}),
            text_delta("fix"),
            message_delta("end_turn"),
            MESSAGE_STOP,
        ]
    )

    assert texts(await collect(model)) == ["Pre", "fix"]


@pytest.mark.parametrize("chunk_size", [1, 5, 13])
async def test_events_cut_anywhere_including_inside_utf8(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock, chunk_size: int
) -> None:
    tokens = ["Grüße", " 🎉", " 日本", "\nline"]
    anthropic_mock.add_stream(tokens, chunk_size=chunk_size, newline="\r\n")

    events = await collect(model)

    assert texts(events) == tokens
    assert events[-1] == StreamEnd(finish_reason="stop")


async def test_a_stop_reason_without_message_stop_is_complete(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    # The stop reason and final usage are known; only the closing marker was lost.
    anthropic_mock.add_stream(["a"], message_stop=False)

    assert (await collect(model))[-1] == StreamEnd(finish_reason="stop")


async def test_a_body_without_stop_reason_or_message_stop_ended_early(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_truncated_stream(["a", "b"])

    events, error = await collect_until_error(model)

    assert texts(events) == ["a", "b"]
    assert type(error) is ProviderStreamError
    assert "ended early" in str(error)


async def test_nothing_after_message_stop_is_read_as_events(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_sse([*anthropic_sse_events(["a"]), text_delta("late")])

    assert texts(await collect(model)) == ["a"]


async def test_a_malformed_event(model: AnthropicChatModel, anthropic_mock: AnthropicMock) -> None:
    anthropic_mock.add_sse([message_start(), text_delta("a"), b"event: x\ndata: {nope\n\n"])

    events, error = await collect_until_error(model)

    assert texts(events) == ["a"]
    assert type(error) is ProviderStreamError
    assert str(error) == "Anthropic sent a malformed event"


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message", "error_type", "status"),
    [
        ("overloaded_error", "Overloaded", ProviderOverloaded, 529),
        ("rate_limit_error", "Number of requests exceeded", ProviderRateLimited, 429),
        ("api_error", "Internal server error", ProviderUnavailable, 500),
        ("invalid_request_error", "Invalid request", ProviderBadRequest, 400),
        (
            "invalid_request_error",
            "prompt is too long: 201000 tokens > 200000",
            ContextTooLong,
            400,
        ),
        ("authentication_error", "invalid x-api-key", ProviderAuthError, 401),
        ("permission_error", "not allowed", ProviderAuthError, 403),
        ("billing_error", "credit balance is too low", ProviderPaymentRequired, 402),
        ("mystery_error", "Something new", ProviderStreamError, None),
    ],
)
async def test_error_event_kinds(
    model: AnthropicChatModel,
    anthropic_mock: AnthropicMock,
    kind: str,
    message: str,
    error_type: type[ChatModelError],
    status: int | None,
) -> None:
    anthropic_mock.add_error_event(kind, message)

    events, error = await collect_until_error(model)

    assert events == []
    assert type(error) is error_type
    assert error.status == status
    assert error.provider == "anthropic"
    assert message in str(error)


async def test_an_error_event_after_tokens_keeps_the_tokens(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_error_event("overloaded_error", "Overloaded", tokens=["par", "tial"])

    events, error = await collect_until_error(model)

    assert texts(events) == ["par", "tial"]
    assert type(error) is ProviderOverloaded


@pytest.mark.parametrize(
    ("status", "message", "error_type"),
    [
        (529, "Overloaded", ProviderOverloaded),
        (413, "Request exceeds the maximum allowed number of bytes.", ProviderBadRequest),
        (
            400,
            "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
            ContextTooLong,
        ),
        (404, "model: claude-9", ProviderBadRequest),
        (403, "Your API key does not have permission", ProviderAuthError),
    ],
)
async def test_http_errors_with_anthropic_bodies(
    model: AnthropicChatModel,
    anthropic_mock: AnthropicMock,
    status: int,
    message: str,
    error_type: type[ChatModelError],
) -> None:
    anthropic_mock.add_http_error(status, message)

    _, error = await collect_until_error(model)

    assert type(error) is error_type
    assert error.status == status
    assert message in str(error)


async def test_a_json_error_in_a_200_uses_the_error_kind(
    model: AnthropicChatModel, httpx_mock: HTTPXMock
) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    httpx_mock.add_response(url=DEFAULT_URL, method="POST", json=body)

    _, error = await collect_until_error(model)

    assert type(error) is ProviderOverloaded


async def test_rate_limit_reads_retry_after(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_http_error(429, "rate limited", retry_after="12")

    _, error = await collect_until_error(model)

    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after == 12.0
    assert str(error) == "Anthropic rate limit reached; retry after 12 s (rate limited)"


# -- check() --------------------------------------------------------------------------------------


async def test_check_lists_models_with_the_auth_headers(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_models()

    await model.check()

    [request] = anthropic_mock.httpx_mock.get_requests()
    assert (request.method, str(request.url)) == ("GET", "https://api.anthropic.com/v1/models")
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, ProviderAuthError), (403, ProviderAuthError), (529, ProviderUnavailable)],
)
async def test_check_failures(
    model: AnthropicChatModel,
    anthropic_mock: AnthropicMock,
    status: int,
    error_type: type[ChatModelError],
) -> None:
    anthropic_mock.add_models(status)

    with pytest.raises(error_type) as info:
        await model.check()

    assert info.value.status == status
    assert API_KEY[:12] not in str(info.value)


async def test_check_with_a_custom_base_url(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    proxy = AnthropicMock(httpx_mock, url="http://gateway.local/anthropic/v1/messages")
    proxy.add_models()

    await make_model(http_client, url=proxy.url).check()

    assert str(httpx_mock.get_requests()[0].url) == "http://gateway.local/anthropic/v1/models"


def test_identity(model: AnthropicChatModel) -> None:
    assert (model.provider, model.default_model) == ("anthropic", "claude-3-5-haiku-latest")


async def test_usage_helper_counts_cache_reads_in_the_prompt(
    model: AnthropicChatModel, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["x"], usage=anthropic_usage(4, 2, cache_read_input_tokens=6))

    assert (await collect(model))[-2] == Usage(
        prompt_tokens=10, completion_tokens=2, total_tokens=12, cached_tokens=6
    )


async def test_sampling_options_are_translated(
    http_client: httpx.AsyncClient, anthropic_mock: AnthropicMock
) -> None:
    anthropic_mock.add_stream(["a"])
    model = make_model(http_client, default_temperature=None)

    await collect(model, options=GenerationOptions(stop=("END",), top_p=0.8, user="user-7"))

    payload = anthropic_mock.last_payload()
    assert payload["stop_sequences"] == ["END"]
    assert payload["top_p"] == 0.8
    assert payload["metadata"] == {"user_id": "user-7"}
    assert "temperature" not in payload  # not set by the request nor the route
    assert payload["max_tokens"] == 1024  # required by Anthropic: the route's


@pytest.mark.parametrize(
    ("options", "param"),
    [
        (GenerationOptions(tools=(Tool(name="f"),)), "tools"),
        (GenerationOptions(response_format=ResponseFormat(type="json_object")), "response_format"),
        (GenerationOptions(seed=1), "seed"),
        (GenerationOptions(frequency_penalty=0.5), "frequency_penalty"),
    ],
)
async def test_what_is_not_translated_yet_is_refused_by_name(
    model: AnthropicChatModel,
    anthropic_mock: AnthropicMock,
    options: GenerationOptions,
    param: str,
) -> None:
    _, error = await stream_until_error(model, CONVERSATION, options)

    assert isinstance(error, UnsupportedOption)
    assert error.param == param
    assert anthropic_mock.payloads() == []
