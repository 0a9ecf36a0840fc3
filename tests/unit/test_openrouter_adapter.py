"""The OpenRouter adapter through pytest-httpx: events, errors, timeouts, payload, cancellation."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.openrouter import OpenRouterChatModel
from aura_agent.domain.errors import (
    ChatModelError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderPaymentRequired,
    ProviderRateLimited,
    ProviderStreamError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    StreamEnd,
    TextDelta,
    Usage,
)
from aura_agent.testing.openrouter_mock import (
    DEFAULT_URL,
    OpenRouterMock,
    openrouter_sse_chunks,
    openrouter_usage,
    sse_event,
)
from tests.adapter_helpers import (
    NO_OPTIONS,
    provider_row,
    stream_events,
    stream_until_error,
    texts,
)

pytest_plugins = ["aura_agent.testing.pytest_plugin"]

API_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
MESSAGES = [Message(role=Role.SYSTEM, content="Be brief."), Message(role=Role.USER, content="Hi")]


def make_model(client: httpx.AsyncClient, **overrides: Any) -> OpenRouterChatModel:
    kwargs: dict[str, Any] = {
        "client": client,
        "api_key": API_KEY,
        "url": DEFAULT_URL,
        "default_model": "deepseek/deepseek-chat",
        "default_temperature": 0.2,
        "default_max_tokens": 2000,
        "first_token_timeout": 5.0,
        **provider_row("openrouter"),
    }
    kwargs.update(overrides)
    return OpenRouterChatModel(**kwargs)


@pytest.fixture
def model(http_client: httpx.AsyncClient) -> OpenRouterChatModel:
    return make_model(http_client)


async def collect(
    model: OpenRouterChatModel, options: GenerationOptions = NO_OPTIONS
) -> list[ChatEvent]:
    return await stream_events(model, MESSAGES, options)


async def collect_until_error(
    model: OpenRouterChatModel,
) -> tuple[list[ChatEvent], ChatModelError]:
    """The events yielded before the stream failed, and the failure."""
    return await stream_until_error(model, MESSAGES)


# -- healthy streams ------------------------------------------------------------------------------


async def test_tokens_usage_and_end_in_order(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["Hel", "lo", " world"], comments=3)

    events = await collect(model)

    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" world"),
        Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13),
        StreamEnd(finish_reason="stop"),
    ]


async def test_comments_between_tokens_are_skipped(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    first, second, *rest = openrouter_sse_chunks(["a", "b"], comments=0)
    comment = b": OPENROUTER PROCESSING\n\n"
    openrouter_mock.add_sse([comment, first, comment, comment, second, comment, *rest])

    assert texts(await collect(model)) == ["a", "b"]


async def test_usage_only_final_chunk_with_details(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    usage = openrouter_usage(120, 7, reasoning_tokens=3, cached_tokens=100)
    openrouter_mock.add_stream(["x"], usage=usage)

    events = await collect(model)

    assert events[-2:] == [
        Usage(
            prompt_tokens=120,
            completion_tokens=7,
            total_tokens=127,
            reasoning_tokens=3,
            cached_tokens=100,
        ),
        StreamEnd(finish_reason="stop"),
    ]


async def test_no_usage_reported_means_no_usage_event(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["x"], usage=None)

    assert await collect(model) == [TextDelta("x"), StreamEnd(finish_reason="stop")]


async def test_finish_reason_is_passed_on(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["cut"], finish_reason="length", usage=None)

    assert (await collect(model))[-1] == StreamEnd(finish_reason="length")


async def test_empty_reply_still_ends_properly(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream([], usage=openrouter_usage(5, 0))

    assert await collect(model) == [
        Usage(prompt_tokens=5, completion_tokens=0, total_tokens=5),
        StreamEnd(finish_reason="stop"),
    ]


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
async def test_body_cut_anywhere_including_inside_utf8(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock, chunk_size: int
) -> None:
    tokens = ["Grüße", " 🎉", " 日本", "\nline"]
    openrouter_mock.add_stream(tokens, chunk_size=chunk_size)

    assert texts(await collect(model)) == tokens


async def test_whole_body_in_one_chunk_with_crlf(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a", "b"], chunked=False, newline="\r\n")

    events = await collect(model)

    assert texts(events) == ["a", "b"]
    assert events[-1] == StreamEnd(finish_reason="stop")


async def test_nothing_after_done_is_read_as_events(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    events = openrouter_sse_chunks(["a"], comments=0)
    openrouter_mock.add_sse([*events, *openrouter_sse_chunks(["late"], comments=0)])

    assert texts(await collect(model)) == ["a"]


async def test_done_without_finish_reason_ends_with_stop(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"], finish_reason=None, usage=None)

    assert await collect(model) == [TextDelta("a"), StreamEnd(finish_reason="stop")]


async def test_finish_reason_without_done_is_complete(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"], done=False, usage=None)

    assert await collect(model) == [TextDelta("a"), StreamEnd(finish_reason="stop")]


async def test_done_without_final_blank_line_is_accepted(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    events = openrouter_sse_chunks(["a"], comments=0, finish_reason=None, done=False)
    openrouter_mock.add_sse([*events, b"data: [DONE]\n"])

    assert await collect(model) == [TextDelta("a"), StreamEnd(finish_reason="stop")]


async def test_last_usage_report_wins(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_sse(
        [
            sse_event({"choices": [{"delta": {"content": "a"}}], "usage": {"prompt_tokens": 1}}),
            sse_event({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            sse_event({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}),
            sse_event("[DONE]"),
        ]
    )

    assert (await collect(model))[-2] == Usage(prompt_tokens=4, completion_tokens=2, total_tokens=6)


async def test_role_only_and_null_content_chunks_yield_nothing(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_sse(
        [
            sse_event({"choices": [{"delta": {"role": "assistant"}}]}),
            sse_event({"choices": [{"delta": {"content": None}}]}),
            sse_event({"choices": [{"delta": {"content": ""}}]}),
            sse_event({"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}),
            sse_event("[DONE]"),
        ]
    )

    assert await collect(model) == [TextDelta("ok"), StreamEnd(finish_reason="stop")]


# -- broken streams -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "error_type"),
    [
        (502, "Provider returned error", ProviderUnavailable),
        (503, "No endpoints available", ProviderUnavailable),
        (429, "Rate limited upstream", ProviderRateLimited),
        (529, "Provider overloaded", ProviderOverloaded),
        (402, "Insufficient credits", ProviderPaymentRequired),
        (400, "This model's maximum context length is 8192 tokens", ContextTooLong),
        ("server_error", "Provider disconnected unexpectedly", ProviderStreamError),
        ("rate_limit_exceeded", "Slow down", ProviderRateLimited),
        (None, "Something odd", ProviderStreamError),
    ],
)
async def test_in_band_error_as_first_and_only_event(
    model: OpenRouterChatModel,
    openrouter_mock: OpenRouterMock,
    code: int | str | None,
    message: str,
    error_type: type[ChatModelError],
) -> None:
    openrouter_mock.add_sse(
        [b": OPENROUTER PROCESSING\n\n", sse_event({"error": {"code": code, "message": message}})]
    )

    events, error = await collect_until_error(model)

    assert events == []
    assert type(error) is error_type
    assert message in str(error)
    assert error.provider == "openrouter"


async def test_in_band_error_after_tokens_keeps_the_tokens(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_in_band_error(
        "Provider disconnected unexpectedly", code="server_error", tokens=["a", "b"]
    )

    events, error = await collect_until_error(model)

    assert texts(events) == ["a", "b"]
    assert type(error) is ProviderStreamError
    assert "Provider disconnected unexpectedly" in str(error)


async def test_top_level_error_without_choices(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_in_band_error("Upstream 503", code=503, finish_reason_error=False)

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable
    assert error.status == 503


async def test_finish_reason_error_without_error_object(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["part"], finish_reason="error")

    events, error = await collect_until_error(model)

    assert texts(events) == ["part"]
    assert type(error) is ProviderStreamError
    assert str(error) == "The model stopped with an error"


async def test_truncated_stream_is_an_error_not_a_success(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_truncated_stream(["Hel", "lo"])

    events, error = await collect_until_error(model)

    assert texts(events) == ["Hel", "lo"]
    assert not any(isinstance(e, StreamEnd) for e in events)
    assert type(error) is ProviderStreamError
    assert "ended early" in str(error)


async def test_stream_cut_inside_a_chunk_is_truncated(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_sse([sse_event({"choices": [{"delta": {"content": "a"}}]}), b"data: {"])

    events, error = await collect_until_error(model)

    assert texts(events) == ["a"]
    assert "ended early" in str(error)


async def test_empty_200_body_is_truncated(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_sse([])

    _, error = await collect_until_error(model)

    assert type(error) is ProviderStreamError


@pytest.mark.parametrize(
    "payload", [b"{not json", b'{"choices": "nope"}', b'{"choices": [{"delta": {"content": 5}}]}']
)
async def test_malformed_chunk(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock, payload: bytes
) -> None:
    good = sse_event({"choices": [{"delta": {"content": "a"}}]})
    openrouter_mock.add_sse([good, b"data: " + payload + b"\n\n", sse_event("[DONE]")])

    events, error = await collect_until_error(model)

    assert texts(events) == ["a"]
    assert type(error) is ProviderStreamError
    assert str(error) == "OpenRouter sent a malformed chunk"


async def test_json_error_body_inside_a_200(
    model: OpenRouterChatModel, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=DEFAULT_URL, json={"error": {"code": 429, "message": "Too many"}}, status_code=200
    )

    _, error = await collect_until_error(model)

    assert type(error) is ProviderRateLimited


# -- HTTP errors before the stream ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "error_type", "phrase"),
    [
        (400, "Invalid model id", ProviderBadRequest, "OpenRouter rejected the request"),
        (
            400,
            "This endpoint's maximum context length is 8192 tokens. However, you requested 9000",
            ContextTooLong,
            "too long for the model's context window",
        ),
        (413, "Payload too large", ProviderBadRequest, "rejected the request"),
        (422, "Unprocessable", ProviderBadRequest, "rejected the request"),
        (404, "No endpoints found", ProviderBadRequest, "rejected the request"),
        (401, "No auth credentials found", ProviderAuthError, "rejected the API key"),
        (403, "Flagged by moderation", ProviderAuthError, "refused access"),
        (402, "Insufficient credits", ProviderPaymentRequired, "out of credits"),
        (408, "Request timed out", ProviderTimeout, "timed out"),
        (429, "Rate limit exceeded", ProviderRateLimited, "rate limit reached"),
        (500, "Internal error", ProviderUnavailable, "HTTP 500"),
        (502, "Provider returned error", ProviderUnavailable, "HTTP 502"),
        (503, "No available provider", ProviderUnavailable, "HTTP 503"),
        (529, "Busy", ProviderOverloaded, "overloaded"),
        (503, "Anthropic is overloaded", ProviderOverloaded, "overloaded"),
    ],
)
async def test_http_status_mapping(
    model: OpenRouterChatModel,
    openrouter_mock: OpenRouterMock,
    status: int,
    message: str,
    error_type: type[ChatModelError],
    phrase: str,
) -> None:
    openrouter_mock.add_http_error(status, message)

    _, error = await collect_until_error(model)

    assert type(error) is error_type
    assert error.status == status
    assert error.provider == "openrouter"
    assert phrase in str(error)
    assert message in str(error)


async def test_context_overflow_found_in_provider_raw_metadata(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    raw = '{"error":{"message":"prompt is too long: 210000 tokens > 200000 maximum"}}'
    openrouter_mock.add_http_error(400, "Provider returned error", metadata={"raw": raw})

    _, error = await collect_until_error(model)

    assert type(error) is ContextTooLong
    assert "210000" not in str(error)  # the raw provider text classifies, it is not quoted


async def test_rate_limit_with_retry_after_seconds(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_http_error(429, "Rate limit exceeded", retry_after="5")

    _, error = await collect_until_error(model)

    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after == 5.0
    assert error.retryable is True
    assert str(error).startswith("OpenRouter rate limit reached; retry after 5 s")


async def test_rate_limit_with_retry_after_http_date(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    openrouter_mock.add_http_error(429, retry_after=format_datetime(when, usegmt=True))

    _, error = await collect_until_error(model)

    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after is not None
    assert 100 <= error.retry_after <= 121


@pytest.mark.parametrize("header", [None, "soon", "-3"])
async def test_rate_limit_without_usable_retry_after(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock, header: str | None
) -> None:
    openrouter_mock.add_http_error(429, "Slow down", retry_after=header)

    _, error = await collect_until_error(model)

    assert isinstance(error, ProviderRateLimited)
    if header == "-3":
        assert error.retry_after == 0.0
    else:
        assert error.retry_after is None
        assert "retry later" in str(error)


async def test_html_error_page_is_not_quoted(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_http_error(
        502, body=b"<!DOCTYPE html><html><body>Bad gateway</body></html>"
    )

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable
    assert str(error) == "OpenRouter cannot serve the model right now (HTTP 502)"


async def test_long_upstream_message_is_truncated(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_http_error(400, "x" * 5000)

    _, error = await collect_until_error(model)

    assert "x" * 199 in str(error)
    assert "x" * 200 not in str(error)
    assert len(str(error)) < 260


async def test_multi_line_upstream_text_becomes_one_line(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_http_error(400, "bad\n  request\r\nhere")

    _, error = await collect_until_error(model)

    assert str(error) == "OpenRouter rejected the request (bad request here)"


# -- secrets never leak ---------------------------------------------------------------------------

_LEAKY = f"Invalid key {API_KEY} (Authorization: Bearer {API_KEY}) calling {DEFAULT_URL}"


@pytest.mark.parametrize("status", [400, 401, 402, 403, 408, 429, 500, 503, 529])
async def test_key_and_url_never_in_http_error_messages(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock, status: int
) -> None:
    openrouter_mock.add_http_error(status, _LEAKY)

    _, error = await collect_until_error(model)

    assert API_KEY not in str(error)
    assert API_KEY[:12] not in str(error)
    assert DEFAULT_URL not in str(error)
    assert "openrouter.ai" not in str(error)
    assert "Invalid key" in str(error)  # the rest of the upstream words survive


async def test_key_never_in_in_band_error_messages(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_in_band_error(_LEAKY, code="server_error", tokens=["a"])

    _, error = await collect_until_error(model)

    assert API_KEY[:12] not in str(error)
    assert "openrouter.ai" not in str(error)


async def test_key_never_in_plain_text_error_body(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_http_error(
        500, body=f"Traceback (most recent call last):\n {API_KEY}".encode()
    )

    _, error = await collect_until_error(model)

    assert API_KEY[:12] not in str(error)
    assert "Traceback" not in str(error)


async def test_key_never_in_transport_error_messages(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_connect_error()

    _, error = await collect_until_error(model)

    assert API_KEY[:12] not in str(error)
    assert "openrouter.ai" not in str(error)
    assert "Traceback" not in str(error)


# -- transport failures and timeouts --------------------------------------------------------------


async def test_read_timeout_before_response(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_timeout("read")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderTimeout
    assert str(error) == "No data from the model for 30 s"


async def test_connect_timeout(model: OpenRouterChatModel, openrouter_mock: OpenRouterMock) -> None:
    openrouter_mock.add_timeout("connect")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderTimeout
    assert str(error) == "Could not connect to OpenRouter within 5 s"


async def test_connect_error(model: OpenRouterChatModel, openrouter_mock: OpenRouterMock) -> None:
    openrouter_mock.add_connect_error()

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable
    assert error.retryable is True
    assert str(error) == "Could not reach OpenRouter"
    assert isinstance(error.__cause__, httpx.ConnectError)


async def test_read_timeout_mid_stream(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream_then_error(["a", "b"], httpx.ReadTimeout("timed out"))

    events, error = await collect_until_error(model)

    assert texts(events) == ["a", "b"]
    assert type(error) is ProviderTimeout
    assert "No data from the model for 30 s" in str(error)


async def test_connection_lost_mid_stream(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream_then_error(
        ["a"], httpx.RemoteProtocolError("peer closed connection without complete body")
    )

    events, error = await collect_until_error(model)

    assert texts(events) == ["a"]
    assert type(error) is ProviderStreamError
    assert "peer closed" not in str(error)


async def test_connection_lost_before_first_token_is_retryable(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream_then_error([], httpx.RemoteProtocolError("peer closed"))

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable


async def test_connection_lost_after_finish_reason_keeps_the_reply(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    events = openrouter_sse_chunks(["a"], comments=0, done=False)
    openrouter_mock.add_sse([*events, httpx.ReadError("reset")])  # finish chunk, then it dies

    assert await collect(model) == [TextDelta("a"), StreamEnd(finish_reason="stop")]


async def test_first_token_timeout_while_only_comments_arrive(
    http_client: httpx.AsyncClient, openrouter_mock: OpenRouterMock
) -> None:
    model = make_model(http_client, first_token_timeout=0.2)
    stream = openrouter_mock.add_stalled_stream(comment_every=0.02)

    started = time.monotonic()
    _, error = await collect_until_error(model)
    elapsed = time.monotonic() - started

    assert type(error) is ProviderTimeout
    assert str(error) == "The model did not start answering within 0.2 s"
    assert 0.15 <= elapsed < 1.0
    assert stream.closed  # the upstream request was released
    assert stream.sent > 0  # comments did arrive; the read timeout alone would never fire


async def test_first_token_timeout_does_not_limit_the_rest(
    http_client: httpx.AsyncClient, openrouter_mock: OpenRouterMock
) -> None:
    model = make_model(http_client, first_token_timeout=0.15)
    openrouter_mock.add_stream(["a", "b", "c"], comments=0, delay=0.1)

    events = await collect(model)

    assert texts(events) == ["a", "b", "c"]
    assert events[-1] == StreamEnd(finish_reason="stop")


async def test_comments_before_a_timely_first_token_are_fine(
    http_client: httpx.AsyncClient, openrouter_mock: OpenRouterMock
) -> None:
    model = make_model(http_client, first_token_timeout=1.0)
    openrouter_mock.add_stream(["late but fine"], comments=4, delay=0.05)

    assert texts(await collect(model)) == ["late but fine"]


async def test_closing_the_generator_closes_upstream(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    stream = openrouter_mock.add_stream([f"t{i}" for i in range(50)], delay=0.01)
    events = model.stream(MESSAGES, NO_OPTIONS)

    assert await anext(events) == TextDelta("t0")
    assert not stream.closed
    await events.aclose()

    assert stream.closed


async def test_cancelling_the_consumer_closes_upstream(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    stream = openrouter_mock.add_stream([f"t{i}" for i in range(50)], delay=0.05)
    got: list[ChatEvent] = []

    async def consume() -> None:
        async for event in model.stream(MESSAGES, NO_OPTIONS):
            got.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert 1 <= len(got) < 50
    assert stream.closed


# -- the request ----------------------------------------------------------------------------------


async def test_payload_uses_defaults(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"])

    await collect(model)

    assert openrouter_mock.last_payload() == {
        "model": "deepseek/deepseek-chat",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "temperature": 0.2,
        "max_tokens": 2000,
        "usage": {"include": True},
    }


async def test_options_override_defaults(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"])

    await collect(
        model, GenerationOptions(model="openai/gpt-4o-mini", temperature=0.0, max_tokens=64)
    )

    payload = openrouter_mock.last_payload()
    assert (payload["model"], payload["temperature"], payload["max_tokens"]) == (
        "openai/gpt-4o-mini",
        0.0,
        64,
    )


async def test_headers_with_attribution(
    http_client: httpx.AsyncClient, openrouter_mock: OpenRouterMock
) -> None:
    model = make_model(http_client, referer="https://app.example", title="Aura")
    openrouter_mock.add_stream(["a"])

    await collect(model)

    request = openrouter_mock.requests()[-1]
    assert request.method == "POST"
    assert str(request.url) == DEFAULT_URL
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["HTTP-Referer"] == "https://app.example"
    assert request.headers["X-Title"] == "Aura"


async def test_no_attribution_headers_by_default(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"])

    await collect(model)

    request = openrouter_mock.requests()[-1]
    assert "HTTP-Referer" not in request.headers
    assert "X-Title" not in request.headers


async def test_each_call_is_one_request(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_stream(["a"])
    openrouter_mock.add_stream(["b"])

    assert texts(await collect(model)) == ["a"]
    assert texts(await collect(model)) == ["b"]
    assert len(openrouter_mock.requests()) == 2


def test_identity(model: OpenRouterChatModel) -> None:
    assert model.provider == "openrouter"
    assert model.default_model == "deepseek/deepseek-chat"


def test_an_empty_key_is_refused(http_client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="API key"):
        make_model(http_client, api_key="")


# -- check() --------------------------------------------------------------------------------------


async def test_check_succeeds(model: OpenRouterChatModel, openrouter_mock: OpenRouterMock) -> None:
    openrouter_mock.add_models()

    await model.check()

    [request] = openrouter_mock.httpx_mock.get_requests()
    assert request.method == "GET"
    assert str(request.url) == "https://openrouter.ai/api/v1/models"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, ProviderAuthError), (403, ProviderAuthError), (500, ProviderUnavailable)],
)
async def test_check_failures(
    model: OpenRouterChatModel,
    openrouter_mock: OpenRouterMock,
    status: int,
    error_type: type[ChatModelError],
) -> None:
    openrouter_mock.add_models(status)

    with pytest.raises(error_type) as info:
        await model.check()

    assert info.value.status == status
    assert API_KEY[:12] not in str(info.value)


async def test_check_unreachable(model: OpenRouterChatModel, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"))

    with pytest.raises(ProviderUnavailable, match="Could not reach OpenRouter"):
        await model.check()


async def test_check_timeout(model: OpenRouterChatModel, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"))

    with pytest.raises(ProviderUnavailable, match="did not answer within 5 s"):
        await model.check()


async def test_the_end_of_the_body_is_read_after_done(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    # Reading to the end lets httpx keep the connection alive for the next request.
    chunks = [*openrouter_sse_chunks(["a"], comments=0), b": bye\n\n"]
    stream = openrouter_mock.add_sse(chunks)

    await collect(model)

    assert stream.sent == sum(len(c) for c in chunks)


async def test_a_body_that_never_ends_after_done_does_not_hold_the_reply(
    model: OpenRouterChatModel, openrouter_mock: OpenRouterMock
) -> None:
    openrouter_mock.add_sse([*openrouter_sse_chunks(["a"], comments=0), 30.0])

    started = time.monotonic()
    events = await collect(model)

    assert events == [TextDelta("a"), StreamEnd(finish_reason="stop")]
    assert time.monotonic() - started < 1.0
