"""The SSE body: what is written per event, coalescing of tokens that arrived together."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.openrouter import OpenRouterChatModel
from aura_agent.domain.errors import ProviderUnavailable
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    StreamEnd,
    TextDelta,
    Usage,
)
from aura_agent.http.chat.stream import sse_body
from aura_agent.http.record import RequestRecord
from aura_agent.http.sse.encoding import DONE, encode_data, encode_error
from aura_agent.testing.openrouter_mock import OpenRouterMock
from tests.adapter_helpers import provider_row


async def _events(*items: ChatEvent, fail: Exception | None = None) -> AsyncGenerator[ChatEvent]:
    for item in items:
        yield item
    if fail is not None:
        raise fail


async def _writes(events: AsyncGenerator[ChatEvent]) -> list[bytes]:
    record = RequestRecord("r", "POST", "/chat")
    return [chunk async for chunk in sse_body(events, record=record)]


async def test_tokens_that_arrived_together_are_written_together() -> None:
    writes = await _writes(
        _events(
            TextDelta("a", more=True),
            TextDelta("b", more=True),
            TextDelta("c"),
            TextDelta("d"),
            Usage(prompt_tokens=1),
            StreamEnd(),
        )
    )
    assert writes == [
        encode_data("a") + encode_data("b") + encode_data("c"),
        encode_data("d"),
        DONE,
    ]


async def test_held_tokens_are_flushed_before_an_error() -> None:
    writes = await _writes(
        _events(TextDelta("a", more=True), fail=ProviderUnavailable("gone", provider="p"))
    )
    assert writes == [encode_data("a") + encode_error("gone")]


async def test_the_adapter_flags_tokens_of_one_read(httpx_mock: HTTPXMock) -> None:
    mock = OpenRouterMock(httpx_mock)
    mock.add_stream(["x", "y", "z"], chunked=False)
    async with httpx.AsyncClient() as client:
        model = OpenRouterChatModel(
            client=client,
            api_key="k",
            url=mock.url,
            default_model="m",
            default_temperature=0.2,
            default_max_tokens=10,
            first_token_timeout=5,
            **provider_row("openrouter"),
        )
        events = [
            event
            async for event in model.stream(
                [Message(role=Role.USER, content="hi")], GenerationOptions()
            )
        ]
    texts = [event for event in events if type(event) is TextDelta]
    assert [(t.text, t.more) for t in texts] == [("x", True), ("y", True), ("z", False)]
