"""The OpenAI-family adapters (OpenAI-compatible servers, OpenRouter) carry tools both ways.

Requests: tools, tool choice, structured output, sampling options and tool-call conversations go
out in OpenAI's names, and nothing the request did not set is sent. Replies: streamed tool-call
pieces become `ToolCallDelta`s in order, whatever the fragmenting, beside the text.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel
from aura_agent.adapters.llm.openrouter import OpenRouterChatModel
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    NamedTool,
    ResponseFormat,
    Role,
    StreamEnd,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from aura_agent.testing.openrouter_mock import OPENAI_URL, OpenAIMock, sse_event
from tests.adapter_helpers import provider_row, stream_events

QUESTION = [Message(role=Role.USER, content="Weather in Paris?")]
WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    strict=True,
)


@pytest.fixture
def openai_mock(httpx_mock: HTTPXMock) -> OpenAIMock:
    return OpenAIMock(httpx_mock)


def make_model(client: httpx.AsyncClient, **overrides: Any) -> OpenAICompatibleChatModel:
    kwargs: dict[str, Any] = {
        "client": client,
        "url": OPENAI_URL,
        "api_key": "sk-unit-test-key-0123456789",
        "default_model": "gpt-4o-mini",
        "default_temperature": None,
        "default_max_tokens": None,
        "first_token_timeout": 5.0,
        **provider_row("openai"),
    }
    kwargs.update(overrides)
    return OpenAICompatibleChatModel(**kwargs)


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    return sse_event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
    )


def call_piece(index: int, arguments: str, *, id: str | None = None, name: str | None = None):
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
        call["function"]["name"] = name
    return chunk({"tool_calls": [call]})


def assembled(events: list[ChatEvent]) -> dict[int, tuple[str | None, str | None, str]]:
    calls: dict[int, tuple[str | None, str | None, str]] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            call_id, name, arguments = calls.get(event.index, (None, None, ""))
            calls[event.index] = (
                event.id or call_id,
                event.name or name,
                arguments + event.arguments,
            )
    return calls


async def test_the_body_carries_only_what_the_request_set(openai_mock: OpenAIMock) -> None:
    openai_mock.add_stream(["ok"])
    async with httpx.AsyncClient() as client:
        await stream_events(make_model(client), QUESTION, GenerationOptions())

    payload = openai_mock.last_payload()
    assert set(payload) == {"model", "messages", "stream", "stream_options"}


async def test_tools_and_options_go_out_in_openais_names(openai_mock: OpenAIMock) -> None:
    openai_mock.add_stream(["ok"])
    options = GenerationOptions(
        temperature=0.7,
        max_tokens=64,
        tools=(WEATHER, Tool(name="noop")),
        tool_choice=NamedTool(name="get_weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat(
            type="json_schema", name="weather", json_schema={"type": "object"}, strict=True
        ),
        stop=("END", "STOP"),
        seed=7,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        user="user-42",
    )
    async with httpx.AsyncClient() as client:
        await stream_events(make_model(client), QUESTION, options)

    payload = openai_mock.last_payload()
    assert payload["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": WEATHER.parameters,
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noop"}},
    ]
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert payload["parallel_tool_calls"] is False
    assert payload["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": True},
    }
    assert payload["stop"] == ["END", "STOP"]
    assert (payload["seed"], payload["top_p"], payload["user"]) == (7, 0.9, "user-42")
    assert (payload["presence_penalty"], payload["frequency_penalty"]) == (0.5, -0.5)
    assert (payload["temperature"], payload["max_tokens"]) == (0.7, 64)


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
async def test_a_word_tool_choice_is_sent_as_is(openai_mock: OpenAIMock, choice: str) -> None:
    openai_mock.add_stream(["ok"])
    options = GenerationOptions(tools=(WEATHER,), tool_choice=choice)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as client:
        await stream_events(make_model(client), QUESTION, options)

    assert openai_mock.last_payload()["tool_choice"] == choice


async def test_json_object_output_is_asked_for(openai_mock: OpenAIMock) -> None:
    openai_mock.add_stream(["{}"])
    options = GenerationOptions(response_format=ResponseFormat(type="json_object"))
    async with httpx.AsyncClient() as client:
        await stream_events(make_model(client), QUESTION, options)

    assert openai_mock.last_payload()["response_format"] == {"type": "json_object"}


async def test_a_tool_conversation_is_sent_back_as_openai_wrote_it(
    openai_mock: OpenAIMock,
) -> None:
    openai_mock.add_stream(["Sunny."])
    conversation = [
        *QUESTION,
        Message(
            role=Role.ASSISTANT,
            content="",
            tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),),
        ),
        Message(role=Role.TOOL, content='{"sky":"clear"}', tool_call_id="call_1"),
        Message(role=Role.USER, content="Thanks", name="ada"),
    ]
    async with httpx.AsyncClient() as client:
        await stream_events(make_model(client), conversation, GenerationOptions())

    assert openai_mock.last_payload()["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"sky":"clear"}', "tool_call_id": "call_1"},
        {"role": "user", "content": "Thanks", "name": "ada"},
    ]


async def test_streamed_tool_calls_become_deltas_in_order(openai_mock: OpenAIMock) -> None:
    arguments = '{"city": "Paris, Île-de-France", "unit": "c"}'
    pieces = [arguments[:1], arguments[1:9], arguments[9:23], arguments[23:]]
    openai_mock.add_sse(
        [
            chunk({"role": "assistant", "content": "Let me look."}).decode(),
            call_piece(0, "", id="call_a", name="get_weather").decode(),
            *(call_piece(0, piece).decode() for piece in pieces),
            call_piece(1, "", id="call_b", name="get_time").decode(),
            call_piece(1, '{"tz":"CET"}').decode(),
            chunk({}, "tool_calls").decode(),
            "data: [DONE]\n\n",
        ]
    )
    async with httpx.AsyncClient() as client:
        events = await stream_events(make_model(client), QUESTION, GenerationOptions())

    assert isinstance(events[0], TextDelta)
    assert events[0].text == "Let me look."
    assert assembled(events) == {
        0: ("call_a", "get_weather", arguments),
        1: ("call_b", "get_time", '{"tz":"CET"}'),
    }
    assert events[-1] == StreamEnd(finish_reason="tool_calls")


async def test_pieces_of_one_read_keep_their_order(openai_mock: OpenAIMock) -> None:
    """Text and tool-call pieces that arrive in one network read are yielded in stream order."""
    body = (
        chunk({"content": "a"})
        + call_piece(0, "", id="call_1", name="f")
        + call_piece(0, "{}")
        + chunk({"content": "b"})
        + chunk({}, "tool_calls")
    ).decode() + "data: [DONE]\n\n"
    openai_mock.add_sse([body])
    async with httpx.AsyncClient() as client:
        events = await stream_events(make_model(client), QUESTION, GenerationOptions())

    kinds = [
        (type(event).__name__, getattr(event, "text", getattr(event, "arguments", "")))
        for event in events
    ]
    assert kinds == [
        ("TextDelta", "a"),
        ("ToolCallDelta", ""),
        ("ToolCallDelta", "{}"),
        ("TextDelta", "b"),
        ("StreamEnd", ""),
    ]


async def test_openrouter_forwards_tools_too(httpx_mock: HTTPXMock) -> None:
    from aura_agent.testing.openrouter_mock import OpenRouterMock

    mock = OpenRouterMock(httpx_mock)
    mock.add_stream(["ok"])
    async with httpx.AsyncClient() as client:
        model = OpenRouterChatModel(
            client=client,
            url=mock.url,
            api_key="sk-or-unit-test-0123456789",
            default_model="openrouter/auto",
            default_temperature=None,
            default_max_tokens=None,
            first_token_timeout=5.0,
            **provider_row("openrouter"),
        )
        await stream_events(model, QUESTION, GenerationOptions(tools=(WEATHER,), seed=3))

    payload = mock.last_payload()
    assert payload["tools"][0]["function"]["name"] == "get_weather"
    assert payload["seed"] == 3
    assert "temperature" not in payload
    assert "max_tokens" not in payload
