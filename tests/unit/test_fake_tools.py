"""Agent-grade replies of the loopback fakes (tool calls, reasoning, logprobs), over real sockets.

Clients must reassemble tool-call arguments from fragments cut anywhere and keep parallel calls
apart by index; these tests pin the shapes the fakes send so the gateway's tests can rely on
them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aura_agent.testing.fake_anthropic import FakeAnthropic
from aura_agent.testing.fake_openrouter import LOOKUP_ARGUMENTS, FakeOpenRouter
from aura_agent.testing.script import Script, ScriptedToolCall

ARGS = '{"city": "Zürich", "note": "a \\"quoted\\" word", "days": [1, 2, 3], "emoji": "🌧"}'
WEATHER = ScriptedToolCall(id="call_w", name="get_weather", arguments=ARGS, fragments=9)
TIME = ScriptedToolCall(id="call_t", name="get_time", arguments='{"tz": "CET"}', fragments=2)
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def openrouter() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


def chat(messages: list[dict[str, Any]] | None = None, *, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "test/model",
        "stream": stream,
        "messages": messages or [{"role": "user", "content": "weather?"}],
    }


def sse_data(text: str) -> list[Any]:
    return [
        json.loads(block.removeprefix("data: "))
        for block in text.split("\n\n")
        if block.startswith("data: ") and block != "data: [DONE]"
    ]


def deltas(events: list[Any]) -> list[dict[str, Any]]:
    """The delta of every chunk without a finish reason."""
    return [
        e["choices"][0]["delta"]
        for e in events
        if e["choices"] and e["choices"][0]["finish_reason"] is None
    ]


def reassemble(events: list[Any]) -> dict[int, dict[str, Any]]:
    """Tool calls by index, arguments concatenated, as an OpenAI client accumulates them."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas(events):
        for part in delta.get("tool_calls", ()):
            call = calls.setdefault(part["index"], {"arguments": "", "fragments": 0})
            if "id" in part:
                assert "id" not in call, "id and name come once, in the call's first delta"
                call.update(id=part["id"], name=part["function"]["name"])
                assert part["function"]["arguments"] == ""
            elif "function" in part:
                call["arguments"] += part["function"]["arguments"]
                call["fragments"] += 1
    return calls


async def stream_into(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    received: list[str],
    headers: dict[str, str] | None = None,
) -> None:
    """Stream a reply into ``received``, which keeps what arrived if the stream breaks."""
    async with http.stream("POST", url, json=body, headers=headers) as resp:
        async for text in resp.aiter_text():
            received.append(text)


async def post_openrouter(
    http: httpx.AsyncClient, fake: FakeOpenRouter, script: Script, **body: Any
) -> httpx.Response:
    fake.enqueue(script)
    resp = await http.post(fake.chat_url, json=chat(**body))
    assert resp.status_code == 200
    return resp


# -- ScriptedToolCall ---------------------------------------------------------------------------


@pytest.mark.parametrize("fragments", [1, 2, 9, len(ARGS), 10_000])
def test_pieces_cut_on_character_boundaries_and_rejoin(fragments: int) -> None:
    pieces = ScriptedToolCall("c", "f", ARGS, fragments).pieces()

    assert "".join(pieces) == ARGS
    assert len(pieces) == min(fragments, len(ARGS))
    assert all(pieces)
    assert all(piece.encode().decode() == piece for piece in pieces)  # whole characters


def test_pieces_of_empty_arguments_and_bad_fragment_counts() -> None:
    assert ScriptedToolCall("c", "f", "", 5).pieces() == [""]
    with pytest.raises(ValueError, match="fragments"):
        ScriptedToolCall("c", "f", "{}", 0)


# -- fake OpenRouter: streamed ------------------------------------------------------------------


@pytest.mark.parametrize("token_delay", [0.0, 0.001])
async def test_streamed_tool_call_fragments_reassemble_to_the_scripted_arguments(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient, token_delay: float
) -> None:
    resp = await post_openrouter(
        http, openrouter, Script(tokens=[], tool_calls=[WEATHER], token_delay=token_delay)
    )

    events = sse_data(resp.text)
    first = deltas(events)[0]
    assert first == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_w",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    assert deltas(events)[1] == {
        "tool_calls": [{"index": 0, "function": {"arguments": ARGS[: len(ARGS) // 9]}}]
    }
    [call] = reassemble(events).values()
    assert call == {"id": "call_w", "name": "get_weather", "arguments": ARGS, "fragments": 9}
    assert json.loads(call["arguments"])["emoji"] == "🌧"
    assert not [d for d in deltas(events) if d.get("content")]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["usage"]["completion_tokens"] == 9


async def test_parallel_tool_calls_follow_the_text_in_order_with_their_indexes(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    resp = await post_openrouter(
        http, openrouter, Script(tokens=["Let me ", "check."], tool_calls=[WEATHER, TIME])
    )

    events = sse_data(resp.text)
    kinds = [
        ("text", d["content"]) if "content" in d else ("call", d["tool_calls"][0]["index"])
        for d in deltas(events)
    ]
    assert kinds == [
        ("text", "Let me "),
        ("text", "check."),
        *[("call", 0)] * 10,
        *[("call", 1)] * 3,
    ]
    calls = reassemble(events)
    assert [(calls[i]["id"], calls[i]["arguments"]) for i in (0, 1)] == [
        ("call_w", ARGS),
        ("call_t", '{"tz": "CET"}'),
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_an_explicit_finish_reason_wins_and_tool_calls_survive_a_drop(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    resp = await post_openrouter(
        http, openrouter, Script(tokens=[], tool_calls=[TIME], finish_reason="length")
    )
    assert sse_data(resp.text)[-2]["choices"][0]["finish_reason"] == "length"

    openrouter.enqueue(Script(tokens=[], tool_calls=[TIME], drop_after_tokens=True))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await stream_into(http, openrouter.chat_url, chat(), received)
    events = sse_data("".join(received))
    assert reassemble(events)[0]["arguments"] == '{"tz": "CET"}'
    assert all(e["choices"][0]["finish_reason"] is None for e in events)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_precedes_the_text_under_the_configured_field(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient, field: str
) -> None:
    script = Script(tokens=["4"], reasoning=["2+2 ", "is ", "4"], reasoning_field=field)
    resp = await post_openrouter(http, openrouter, script)

    events = sse_data(resp.text)
    assert deltas(events) == [
        {"role": "assistant", "content": None, field: "2+2 "},
        {"role": "assistant", "content": None, field: "is "},
        {"role": "assistant", "content": None, field: "4"},
        {"role": "assistant", "content": "4"},
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    usage = events[-1]["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}


async def test_streamed_logprobs_ride_on_every_text_chunk(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    resp = await post_openrouter(http, openrouter, Script(tokens=["Hé", "llo"], logprobs=True))

    choices = [e["choices"][0] for e in sse_data(resp.text)[:2]]
    assert [c["delta"]["content"] for c in choices] == ["Hé", "llo"]
    assert choices[0]["logprobs"] == {
        "content": [{"token": "Hé", "logprob": -0.1, "bytes": [72, 195, 169], "top_logprobs": []}]
    }
    assert choices[1]["logprobs"]["content"][0]["token"] == "llo"


async def test_plain_text_chunks_carry_no_new_keys(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    resp = await post_openrouter(http, openrouter, Script(tokens=["a"]))

    [token, _finish, usage] = sse_data(resp.text)
    assert token["choices"][0].keys() == {"index", "delta", "finish_reason"}
    assert "completion_tokens_details" not in usage["usage"]


# -- fake OpenRouter: not streamed --------------------------------------------------------------


async def test_a_non_stream_tool_call_reply_has_openais_shape(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    script = Script(tokens=[], tool_calls=[WEATHER, TIME], reasoning=["hm"], logprobs=True)
    resp = await post_openrouter(http, openrouter, script, stream=False)

    [choice] = resp.json()["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "hm",
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in (WEATHER, TIME)
        ],
    }
    assert choice["finish_reason"] == "tool_calls"
    assert choice["logprobs"] == {"content": []}
    assert resp.json()["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}


async def test_a_non_stream_reply_keeps_text_next_to_tool_calls_and_logprobs(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    script = Script(tokens=["On ", "it"], tool_calls=[TIME], logprobs=True)
    resp = await post_openrouter(http, openrouter, script, stream=False)

    [choice] = resp.json()["choices"]
    assert choice["message"]["content"] == "On it"
    assert [e["token"] for e in choice["logprobs"]["content"]] == ["On ", "it"]
    assert "reasoning_content" not in choice["message"]


# -- echo mode in agent conversations -----------------------------------------------------------

AGENT_TURNS: list[dict[str, Any]] = [
    {"role": "system", "content": None},
    {"role": "user", "content": [
        {"type": "text", "text": "weather in "}, {"type": "text", "text": "Bern?"}
    ]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_w", "content": "sunny"},
    {"role": "user", "content": None},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]},
]  # fmt: skip


@pytest.mark.parametrize("stream", [True, False])
async def test_echo_mode_finds_the_last_user_text_among_tool_turns(
    openrouter: FakeOpenRouter, http: httpx.AsyncClient, stream: bool
) -> None:
    resp = await post_openrouter(http, openrouter, Script(), messages=AGENT_TURNS, stream=stream)

    if stream:
        text = "".join(d["content"] for d in deltas(sse_data(resp.text)))
    else:
        text = resp.json()["choices"][0]["message"]["content"]
    assert text == "Echo: weather in Bern?"


# -- fake Anthropic -----------------------------------------------------------------------------


def anthropic_body(
    messages: list[dict[str, Any]] | None = None, *, stream: bool = True
) -> dict[str, Any]:
    return {"max_tokens": 100, **chat(messages, stream=stream)}


def parse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def post_anthropic(
    http: httpx.AsyncClient, fake: FakeAnthropic, script: Script, **body: Any
) -> httpx.Response:
    fake.enqueue(script)
    resp = await http.post(
        fake.messages_url, json=anthropic_body(**body), headers=ANTHROPIC_HEADERS
    )
    assert resp.status_code == 200
    return resp


def outline(events: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
    """Block events as (name, index, block or delta type), other events as (name,)."""
    out: list[tuple[Any, ...]] = []
    for name, data in events:
        if name == "content_block_start":
            out.append((name, data["index"], data["content_block"]["type"]))
        elif name == "content_block_delta":
            out.append((name, data["index"], data["delta"]["type"]))
        elif name == "content_block_stop":
            out.append((name, data["index"]))
        else:
            out.append((name,))
    return out


@pytest.mark.parametrize("token_delay", [0.0, 0.001])
async def test_anthropic_streams_thinking_text_and_tool_use_blocks_in_order(
    anthropic: FakeAnthropic, http: httpx.AsyncClient, token_delay: float
) -> None:
    script = Script(
        tokens=["Checking."],
        reasoning=["need ", "weather"],
        tool_calls=[WEATHER, TIME],
        thinking_signature="sig-123",
        token_delay=token_delay,
    )
    events = parse_events((await post_anthropic(http, anthropic, script)).text)

    delta = "content_block_delta"
    assert outline(events) == [
        ("message_start",),
        ("content_block_start", 0, "thinking"),
        (delta, 0, "thinking_delta"),
        (delta, 0, "thinking_delta"),
        (delta, 0, "signature_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1, "text"),
        (delta, 1, "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2, "tool_use"),
        *[(delta, 2, "input_json_delta")] * 9,
        ("content_block_stop", 2),
        ("content_block_start", 3, "tool_use"),
        *[(delta, 3, "input_json_delta")] * 2,
        ("content_block_stop", 3),
        ("message_delta",),
        ("message_stop",),
    ]
    data = [d for _, d in events]
    assert data[1]["content_block"] == {"type": "thinking", "thinking": ""}
    assert data[4]["delta"] == {"type": "signature_delta", "signature": "sig-123"}
    assert data[9]["content_block"] == {
        "type": "tool_use",
        "id": "call_w",
        "name": "get_weather",
        "input": {},
    }
    for index, call in ((2, WEATHER), (3, TIME)):
        partial = "".join(
            d["delta"]["partial_json"] for d in data if d["type"] == delta and d["index"] == index
        )
        assert partial == call.arguments
    final = data[-2]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"] == {"output_tokens": 1 + 2 + 9 + 2}


async def test_anthropic_tool_use_without_text_starts_at_block_zero(
    anthropic: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    events = parse_events(
        (await post_anthropic(http, anthropic, Script(tokens=[], tool_calls=[TIME]))).text
    )

    assert outline(events)[1:5] == [
        ("content_block_start", 0, "tool_use"),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_stop", 0),
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_drop_leaves_the_last_block_open(
    anthropic: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    anthropic.enqueue(Script(tokens=["a"], tool_calls=[TIME], drop_after_tokens=True))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        await stream_into(
            http, anthropic.messages_url, anthropic_body(), received, ANTHROPIC_HEADERS
        )

    assert outline(parse_events("".join(received)))[-3:] == [
        ("content_block_start", 1, "tool_use"),
        ("content_block_delta", 1, "input_json_delta"),
        ("content_block_delta", 1, "input_json_delta"),
    ]


async def test_an_anthropic_non_stream_reply_lists_its_blocks(
    anthropic: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    script = Script(tokens=[], reasoning=["hm"], tool_calls=[WEATHER, TIME])
    message = (await post_anthropic(http, anthropic, script, stream=False)).json()

    assert message["content"] == [
        {"type": "thinking", "thinking": "hm", "signature": "sig-fake"},
        {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": json.loads(ARGS)},
        {"type": "tool_use", "id": "call_t", "name": "get_time", "input": {"tz": "CET"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["output_tokens"] == 1 + 9 + 2


ANTHROPIC_TURNS: list[dict[str, Any]] = [
    {"role": "user", "content": [{"type": "text", "text": "weather in Bern?"}]},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
    ]},
]  # fmt: skip


async def test_anthropic_echo_skips_tool_result_turns(
    anthropic: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    events = parse_events(
        (await post_anthropic(http, anthropic, Script(), messages=ANTHROPIC_TURNS)).text
    )

    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "Echo: weather in Bern?"


# -- command line -------------------------------------------------------------------------------


async def test_command_line_tool_call_fragments(http: httpx.AsyncClient) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aura_agent.testing.fake_openrouter",
        "--port",
        "0",
        "--tool-call-fragments",
        "25",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        _, url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()
        events = sse_data((await http.post(url, json=chat())).text)
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert reassemble(events) == {
        0: {"id": "call_0", "name": "lookup", "arguments": LOOKUP_ARGUMENTS, "fragments": 25}
    }
    assert 150 <= len(LOOKUP_ARGUMENTS.encode()) <= 250
    assert not [d for d in deltas(events) if "content" in d]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
