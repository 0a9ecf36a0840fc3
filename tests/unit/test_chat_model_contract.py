"""One contract that every `ChatModel` adapter honours, whatever vendor it speaks to.

Each vendor gets a small harness that scripts its own recorded-style streams and failures through
pytest-httpx (OpenRouter and OpenAI chunk streams, Anthropic event streams); the tests below are
written once against the harness and run for every adapter. The offline demo model joins the
tests that need no upstream. Vendor quirks live in the per-adapter test modules.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import pytest
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.anthropic import AnthropicChatModel
from aura_agent.adapters.llm.demo import DemoChatModel, demo_reply
from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel
from aura_agent.adapters.llm.openrouter import OpenRouterChatModel
from aura_agent.domain.errors import (
    ChatModelError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderStreamError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aura_agent.domain.models import (
    ChatEvent,
    Message,
    Role,
    StreamEnd,
    TextDelta,
    Usage,
)
from aura_agent.domain.ports import ChatModel
from aura_agent.testing.anthropic_mock import AnthropicMock
from aura_agent.testing.openrouter_mock import OpenAIMock, OpenRouterMock
from aura_agent.testing.sse_mock import ScriptedByteStream
from tests.adapter_helpers import NO_OPTIONS, provider_row, stream_events, stream_until_error

MESSAGES = [
    Message(role=Role.SYSTEM, content="Be brief."),
    Message(role=Role.USER, content="Hi there"),
]
TOKENS = ["Hel", "lo", ", wor", "ld ✨", "\nbye"]


class Harness(Protocol):
    """How the contract drives one vendor: its adapter, and its mock in that vendor's format."""

    provider: str
    api_key: str

    def model(self, client: httpx.AsyncClient, **overrides: Any) -> ChatModel: ...
    def add_stream(self, tokens: list[str], *, delay: float = 0.0) -> ScriptedByteStream: ...
    def expected_usage(self, tokens: list[str]) -> Usage: ...
    def add_http_error(
        self, status: int, message: str, *, retry_after: str | None = None
    ) -> None: ...
    def add_overloaded(self, message: str) -> None: ...
    def context_too_long_message(self) -> str: ...
    def add_in_band_error(self, message: str, *, tokens: list[str]) -> None: ...
    def add_truncated(self, tokens: list[str]) -> None: ...
    def add_stalled(self) -> ScriptedByteStream: ...
    def add_timeout(self) -> None: ...
    def add_connect_error(self) -> None: ...


def _settings(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "default_temperature": 0.2,
        "default_max_tokens": 256,
        "first_token_timeout": 5.0,
    }
    settings.update(overrides)
    return settings


class MockedHarness:
    """What every pytest-httpx harness does alike; subclasses name the adapter, mock and format."""

    provider: str
    api_key: str
    adapter: Callable[..., ChatModel]
    default_model: str
    mock: OpenRouterMock | AnthropicMock

    def model(self, client: httpx.AsyncClient, **overrides: Any) -> ChatModel:
        return self.adapter(
            client=client,
            api_key=self.api_key,
            url=self.mock.url,
            default_model=self.default_model,
            **provider_row(self.provider),
            **_settings(**overrides),
        )

    def expected_usage(self, tokens: list[str]) -> Usage:
        return Usage(prompt_tokens=12, completion_tokens=len(tokens), total_tokens=12 + len(tokens))

    def add_http_error(self, status: int, message: str, *, retry_after: str | None = None) -> None:
        self.mock.add_http_error(status, message, retry_after=retry_after)

    def add_overloaded(self, message: str) -> None:
        self.mock.add_http_error(529, message)

    def add_truncated(self, tokens: list[str]) -> None:
        self.mock.add_truncated_stream(tokens)

    def add_timeout(self) -> None:
        self.mock.add_timeout("read")

    def add_connect_error(self) -> None:
        self.mock.add_connect_error()


class OpenRouterHarness(MockedHarness):
    provider = "openrouter"
    api_key = "sk-or-v1-contract0123456789abcdef0123456789"
    adapter = OpenRouterChatModel
    default_model = "deepseek/deepseek-chat"
    mock: OpenRouterMock

    def __init__(self, httpx_mock: HTTPXMock) -> None:
        self.mock = OpenRouterMock(httpx_mock)

    def add_stream(self, tokens: list[str], *, delay: float = 0.0) -> ScriptedByteStream:
        return self.mock.add_stream(tokens, usage=self.mock.usage(12, len(tokens)), delay=delay)

    def context_too_long_message(self) -> str:
        return "This endpoint's maximum context length is 8192 tokens"

    def add_in_band_error(self, message: str, *, tokens: list[str]) -> None:
        self.mock.add_in_band_error(message, code="server_error", tokens=tokens)

    def add_stalled(self) -> ScriptedByteStream:
        return self.mock.add_stalled_stream(comment_every=0.02)


class OpenAIHarness(OpenRouterHarness):
    provider = "openai"
    api_key = "sk-proj-contractABCDEFGHIJKLMNOPQRSTUV0123456789"
    adapter = OpenAICompatibleChatModel
    default_model = "gpt-4o-mini"

    def __init__(self, httpx_mock: HTTPXMock) -> None:
        self.mock = OpenAIMock(httpx_mock)

    def context_too_long_message(self) -> str:
        return "This model's maximum context length is 128000 tokens. However, you requested 130000"

    def add_stalled(self) -> ScriptedByteStream:
        # OpenAI sends no comments; a model that never starts is pure silence on a live socket.
        return self.mock.add_sse([30.0])


class AnthropicHarness(MockedHarness):
    provider = "anthropic"
    api_key = "sk-ant-api03-contract0123456789abcdefABCDEF-xyz"
    adapter = AnthropicChatModel
    default_model = "claude-3-5-haiku-latest"
    mock: AnthropicMock

    def __init__(self, httpx_mock: HTTPXMock) -> None:
        self.mock = AnthropicMock(httpx_mock)

    def add_stream(self, tokens: list[str], *, delay: float = 0.0) -> ScriptedByteStream:
        usage = {"input_tokens": 12, "output_tokens": len(tokens)}
        return self.mock.add_stream(tokens, usage=usage, delay=delay)

    def context_too_long_message(self) -> str:
        return "prompt is too long: 210000 tokens > 200000 maximum"

    def add_in_band_error(self, message: str, *, tokens: list[str]) -> None:
        self.mock.add_error_event("api_error", message, tokens=tokens)

    def add_stalled(self) -> ScriptedByteStream:
        return self.mock.add_stalled_stream(ping_every=0.02)


HARNESSES: dict[str, Callable[[HTTPXMock], Harness]] = {
    "openrouter": OpenRouterHarness,
    "openai": OpenAIHarness,
    "anthropic": AnthropicHarness,
}


@pytest.fixture(params=sorted(HARNESSES))
def vendor(request: pytest.FixtureRequest, httpx_mock: HTTPXMock) -> Harness:
    return HARNESSES[request.param](httpx_mock)


@pytest.fixture
def model(vendor: Harness, http_client: httpx.AsyncClient) -> ChatModel:
    return vendor.model(http_client)


async def collect(model: ChatModel) -> list[ChatEvent]:
    return await stream_events(model, MESSAGES)


async def collect_until_error(model: ChatModel) -> tuple[list[ChatEvent], ChatModelError]:
    return await stream_until_error(model, MESSAGES)


def text_of(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- healthy streams, every adapter including the demo --------------------------------------------


@dataclass(frozen=True)
class Healthy:
    """An adapter set up to produce a known reply with known usage."""

    model: ChatModel
    reply: str
    usage: Usage


@pytest.fixture(params=["openrouter", "openai", "anthropic", "demo"])
def healthy(
    request: pytest.FixtureRequest, httpx_mock: HTTPXMock, http_client: httpx.AsyncClient
) -> Healthy:
    if request.param == "demo":
        reply = demo_reply(MESSAGES)
        words = len(reply.split())
        prompt = sum(len(m.content) // 4 + 1 for m in MESSAGES)
        usage = Usage(prompt_tokens=prompt, completion_tokens=words, total_tokens=prompt + words)
        return Healthy(
            DemoChatModel(model="aura/offline-demo", token_delay_seconds=0), reply, usage
        )
    harness = HARNESSES[request.param](httpx_mock)
    harness.add_stream(TOKENS)
    return Healthy(harness.model(http_client), "".join(TOKENS), harness.expected_usage(TOKENS))


@pytest.mark.httpx_mock(assert_all_responses_were_requested=False)
def test_satisfies_the_port(healthy: Healthy) -> None:
    assert isinstance(healthy.model, ChatModel)
    assert healthy.model.provider
    assert healthy.model.default_model


async def test_tokens_arrive_in_order_and_concatenate_to_the_reply(healthy: Healthy) -> None:
    events = await collect(healthy.model)

    assert text_of(events) == healthy.reply
    assert all(e.text for e in events if isinstance(e, TextDelta))  # no empty deltas


async def test_exactly_one_stream_end_and_it_comes_last(healthy: Healthy) -> None:
    events = await collect(healthy.model)

    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert ends == [StreamEnd(finish_reason="stop")]
    assert events[-1] is ends[0]


async def test_usage_is_reported_once_after_the_text(healthy: Healthy) -> None:
    events = await collect(healthy.model)

    usages = [e for e in events if isinstance(e, Usage)]
    assert usages == [healthy.usage]
    assert events.index(usages[0]) == len(events) - 2  # after every token, before the end


# -- failures before the stream --------------------------------------------------------------------


async def test_401_is_an_auth_error(vendor: Harness, model: ChatModel) -> None:
    vendor.add_http_error(401, "invalid api key")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderAuthError
    assert (error.status, error.provider, error.retryable) == (401, vendor.provider, False)


async def test_429_is_rate_limited_with_retry_after(vendor: Harness, model: ChatModel) -> None:
    vendor.add_http_error(429, "slow down", retry_after="7")

    _, error = await collect_until_error(model)

    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after == 7.0
    assert error.retryable is True


async def test_overloaded_is_its_own_retryable_error(vendor: Harness, model: ChatModel) -> None:
    vendor.add_overloaded("Overloaded")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderOverloaded
    assert error.status == 529
    assert error.retryable is True


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(vendor: Harness, model: ChatModel, status: int) -> None:
    vendor.add_http_error(status, "internal trouble")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable
    assert error.status == status
    assert error.retryable is True


async def test_400_is_a_bad_request(vendor: Harness, model: ChatModel) -> None:
    vendor.add_http_error(400, "temperature: must be a number")

    _, error = await collect_until_error(model)

    assert type(error) is ProviderBadRequest
    assert error.retryable is False
    assert "temperature: must be a number" in str(error)


async def test_context_overflow_is_context_too_long(vendor: Harness, model: ChatModel) -> None:
    vendor.add_http_error(400, vendor.context_too_long_message())

    _, error = await collect_until_error(model)

    assert type(error) is ContextTooLong


async def test_read_timeout_is_a_timeout(vendor: Harness, model: ChatModel) -> None:
    vendor.add_timeout()

    _, error = await collect_until_error(model)

    assert type(error) is ProviderTimeout
    assert isinstance(error.__cause__, httpx.ReadTimeout)


async def test_connect_error_is_unavailable(vendor: Harness, model: ChatModel) -> None:
    vendor.add_connect_error()

    _, error = await collect_until_error(model)

    assert type(error) is ProviderUnavailable
    assert error.retryable is True


# -- failures inside the stream --------------------------------------------------------------------


async def test_truncated_stream_is_an_error_not_a_short_success(
    vendor: Harness, model: ChatModel
) -> None:
    vendor.add_truncated(["par", "tial"])

    events, error = await collect_until_error(model)

    assert text_of(events) == "partial"
    assert not [e for e in events if isinstance(e, StreamEnd | Usage)]
    assert type(error) is ProviderStreamError


async def test_in_band_error_after_tokens_is_an_error(vendor: Harness, model: ChatModel) -> None:
    vendor.add_in_band_error("the backend fell over", tokens=["a", "b"])

    events, error = await collect_until_error(model)

    assert text_of(events) == "ab"
    assert not [e for e in events if isinstance(e, StreamEnd)]
    assert "the backend fell over" in str(error)
    assert error.provider == vendor.provider


async def test_first_token_deadline_holds_while_only_keepalives_arrive(
    vendor: Harness, http_client: httpx.AsyncClient
) -> None:
    model = vendor.model(http_client, first_token_timeout=0.2)
    stream = vendor.add_stalled()

    _, error = await collect_until_error(model)

    assert type(error) is ProviderTimeout
    assert "did not start answering within 0.2 s" in str(error)
    assert stream.closed


# -- releasing the upstream ------------------------------------------------------------------------


async def test_closing_the_generator_after_the_first_token_closes_upstream(
    vendor: Harness, model: ChatModel
) -> None:
    stream = vendor.add_stream([f"t{i}" for i in range(50)], delay=0.01)
    events = model.stream(MESSAGES, NO_OPTIONS)
    assert isinstance(events, AsyncGenerator)  # closable: `aclose` releases the upstream

    assert await anext(events) == TextDelta("t0")
    assert not stream.closed
    await events.aclose()

    assert stream.closed


async def test_cancelling_the_consumer_closes_upstream(vendor: Harness, model: ChatModel) -> None:
    stream = vendor.add_stream([f"t{i}" for i in range(50)], delay=0.03)
    got: list[ChatEvent] = []

    async def consume() -> None:
        async for event in model.stream(MESSAGES, NO_OPTIONS):
            got.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.25)  # past the vendor's preamble events and a few tokens
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert 1 <= len(got) < 50
    assert stream.closed


async def test_later_tokens_may_be_read_from_another_task(
    vendor: Harness, http_client: httpx.AsyncClient
) -> None:
    # The routing layer reads the first token itself, then hands the stream to the response.
    # Every event is 0.08 s late: the first token arrives in time, the whole reply does not.
    model = vendor.model(http_client, first_token_timeout=0.4)
    vendor.add_stream(["a", "b", "c"], delay=0.08)
    events = model.stream(MESSAGES, NO_OPTIONS)

    async def first_event() -> ChatEvent:
        return await anext(events)

    first = await asyncio.create_task(first_event())
    rest = [event async for event in events]

    assert text_of([first, *rest]) == "abc"
    assert isinstance(rest[-1], StreamEnd)


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 529])
async def test_the_api_key_never_appears_in_http_error_messages(
    vendor: Harness, model: ChatModel, status: int
) -> None:
    vendor.add_http_error(
        status, f"bad key {vendor.api_key} (Authorization: Bearer {vendor.api_key})"
    )

    _, error = await collect_until_error(model)

    assert vendor.api_key not in str(error)
    assert vendor.api_key[:10] not in str(error)
    assert "bad key" in str(error)  # the rest of the upstream words survive


async def test_the_api_key_never_appears_in_in_band_error_messages(
    vendor: Harness, model: ChatModel
) -> None:
    vendor.add_in_band_error(f"upstream echoed {vendor.api_key}", tokens=["a"])

    _, error = await collect_until_error(model)

    assert vendor.api_key not in str(error)
    assert vendor.api_key[:10] not in str(error)
