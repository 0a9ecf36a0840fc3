"""The pytest-httpx mocks' event builders speak tool calls and reasoning like the loopback fakes.

Adapter tests build their upstream bodies with these; a wrong shape here would make them test
a protocol no provider speaks.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pytest_httpx import HTTPXMock

from aura_agent.testing.anthropic_mock import AnthropicMock, anthropic_sse_events
from aura_agent.testing.openrouter_mock import (
    OpenAIMock,
    ScriptedToolCall,
    openai_sse_chunks,
    openrouter_sse_chunks,
)

CALLS = [
    ScriptedToolCall("call_a", "search", '{"q": "Zürich cafés"}', fragments=4),
    ScriptedToolCall("call_b", "clock", "{}"),
]


def data_of(events: list[bytes]) -> list[Any]:
    """The JSON payload of every ``data:`` event, ``[DONE]`` and comments left out."""
    out = []
    for event in events:
        for line in event.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line.removeprefix("data: ")))
    return out


def openai_deltas(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]][:-1]  # minus the finish


def test_openrouter_chunks_carry_reasoning_then_text_then_tool_calls() -> None:
    chunks = data_of(openrouter_sse_chunks(["Ok"], reasoning=["hm ", "yes"], tool_calls=CALLS))

    deltas = openai_deltas(chunks)
    assert deltas[:3] == [
        {"role": "assistant", "content": "", "reasoning": "hm "},
        {"role": "assistant", "content": "", "reasoning": "yes"},
        {"role": "assistant", "content": "Ok"},
    ]
    assert deltas[3] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "search", "arguments": ""},
            }
        ]
    }
    arguments: dict[int, str] = {}
    for delta in deltas[3:]:
        [part] = delta["tool_calls"]
        arguments[part["index"]] = arguments.get(part["index"], "") + part["function"]["arguments"]
    assert arguments == {0: CALLS[0].arguments, 1: "{}"}
    assert len(deltas) == 3 + (1 + 4) + (1 + 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_reasoning_chunks_have_null_content_and_an_explicit_finish_wins() -> None:
    chunks = data_of(
        openai_sse_chunks([], reasoning=["r"], tool_calls=CALLS[1:], finish_reason="length")
    )

    assert openai_deltas(chunks)[0] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "r",
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_anthropic_events_carry_thinking_text_and_tool_use_blocks() -> None:
    events = data_of(anthropic_sse_events(["Ok"], thinking=["hm"], tool_uses=CALLS, pings=0))

    starts = [(e["index"], e["content_block"]["type"]) for e in events if "content_block" in e]
    assert starts == [(0, "thinking"), (1, "text"), (2, "tool_use"), (3, "tool_use")]
    block_deltas = [(e["index"], e["delta"]) for e in events if e["type"] == "content_block_delta"]
    assert block_deltas[:2] == [
        (0, {"type": "thinking_delta", "thinking": "hm"}),
        (0, {"type": "signature_delta", "signature": "sig-mock"}),
    ]
    partial = "".join(d["partial_json"] for i, d in block_deltas if i == 2)
    assert partial == CALLS[0].arguments
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def test_mocks_count_reasoning_and_fragments_in_auto_usage(
    httpx_mock: HTTPXMock, http_client: httpx.AsyncClient
) -> None:
    openai = OpenAIMock(httpx_mock)
    openai.add_stream(["a"], reasoning=["r", "s"], tool_calls=CALLS)
    anthropic = AnthropicMock(httpx_mock)
    anthropic.add_stream([], thinking=["t"], tool_uses=CALLS[:1])

    openai_body = (await http_client.post(openai.url, json={})).content
    anthropic_body = (await http_client.post(anthropic.url, json={})).content

    assert data_of([openai_body])[-1]["usage"]["completion_tokens"] == 1 + 2 + 4 + 1
    assert data_of([anthropic_body])[-2]["usage"] == {"output_tokens": 1 + 4}
