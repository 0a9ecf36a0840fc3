"""`/v1/chat/completions` with tools, tool results, structured output and sampling options.

Through the app: what the client sends reaches the model as domain options and messages (and
nothing it did not send), tool calls come back in OpenAI's exact shapes streamed and not, and
what cannot be honoured is a 400 in OpenAI's error shape naming the parameter.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from aura_agent.domain.models import (
    GenerationOptions,
    NamedTool,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolCallDelta,
)
from tests.conftest import AppFactory
from tests.support import API_KEY, ScriptedModel, parse_sse

ROUTE = "deepseek/deepseek-chat"
BEARER = {"authorization": f"Bearer {API_KEY}"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
A_CALL = [
    ToolCallDelta(index=0, id="call_1", name="get_weather", arguments=""),
    ToolCallDelta(index=0, arguments='{"ci'),
    ToolCallDelta(index=0, arguments='ty": "Paris"}'),
]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": ROUTE, "messages": [{"role": "user", "content": "hi"}], **fields}


def chunks_of(response: httpx.Response) -> list[dict[str, Any]]:
    data = [event.data for event in parse_sse(response.content)]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


async def post(
    build_app: AppFactory, model: ScriptedModel, payload: dict[str, Any], **headers: str
) -> httpx.Response:
    async with AsyncTestClient(app=build_app(chat_model=model)) as api:
        return await api.post("/v1/chat/completions", json=payload, headers={**BEARER, **headers})


def sent_options(model: ScriptedModel) -> GenerationOptions:
    assert len(model.calls) == 1
    return model.calls[0][1]


async def test_a_streamed_tool_call_has_openais_delta_shape(build_app: AppFactory) -> None:
    model = ScriptedModel(A_CALL, finish_reason="tool_calls")
    response = await post(build_app, model, body(stream=True, tools=[WEATHER_TOOL]))

    assert response.status_code == 200
    chunks = chunks_of(response)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_non_streamed_tool_call_is_in_the_message(build_app: AppFactory) -> None:
    second = ToolCallDelta(index=1, id="call_2", name="get_time", arguments="{}")
    model = ScriptedModel([*A_CALL, second], finish_reason="tool_calls")
    response = await post(build_app, model, body(tools=[WEATHER_TOOL]))

    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]


async def test_a_text_reply_has_no_tool_calls_field(build_app: AppFactory) -> None:
    response = await post(build_app, ScriptedModel(["Hi"]), body())

    assert "tool_calls" not in response.json()["choices"][0]["message"]


async def test_the_request_reaches_the_model_as_domain_options(build_app: AppFactory) -> None:
    model = ScriptedModel(["{}"])
    payload = body(
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        stop="END",
        seed=11,
        top_p=0.5,
        presence_penalty=1.5,
        frequency_penalty=-1,
        user="u-1",
        store=True,  # harmless to ignore
    )
    response = await post(build_app, model, payload)

    assert response.status_code == 200, response.text
    options = sent_options(model)
    assert options.tools == (
        Tool(
            name="get_weather",
            description="Current weather in a city",
            parameters=WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        ),
    )
    assert options.tool_choice == NamedTool(name="get_weather")
    assert options.parallel_tool_calls is False
    assert options.response_format == ResponseFormat(
        type="json_schema", name="w", json_schema={"type": "object"}, strict=True
    )
    assert options.stop == ("END",)
    assert (options.seed, options.top_p, options.user) == (11, 0.5, "u-1")
    assert (options.presence_penalty, options.frequency_penalty) == (1.5, -1)


async def test_nothing_the_client_did_not_send_is_injected(build_app: AppFactory) -> None:
    model = ScriptedModel(["ok"])
    await post(build_app, model, body())

    options = sent_options(model)
    assert options.temperature is None
    assert options.max_tokens is None
    assert options == GenerationOptions(model=ROUTE)


async def test_a_tool_loop_conversation_reaches_the_model(build_app: AppFactory) -> None:
    model = ScriptedModel(["It is sunny."])
    messages = [
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
            "refusal": None,  # SDKs echo the reply's fields back
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
    ]
    response = await post(build_app, model, body(messages=messages, tools=[WEATHER_TOOL]))

    assert response.status_code == 200, response.text
    sent = model.calls[0][0]
    assert [message.role for message in sent] == [Role.USER, Role.ASSISTANT, Role.TOOL]
    assert sent[1].tool_calls == (
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
    )
    assert sent[1].content == ""
    assert (sent[2].tool_call_id, sent[2].content) == ("call_1", '{"sky": "clear"}')


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"logit_bias": {"1": 2}}, "logit_bias", "unknown_parameter"),
        ({"functions": [{"name": "f"}]}, "functions", "unknown_parameter"),
        ({"logprobs": True}, "logprobs", "unsupported_parameter"),
        ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        (
            {
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice.function.name",
            "invalid_value",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "a b"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type", "invalid_value"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", None),
        ({"top_p": 1.5}, "top_p", "invalid_value"),
        ({"presence_penalty": -3}, "presence_penalty", "invalid_value"),
        (
            {"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
            "messages[0].tool_call_id",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            {"messages": [{"role": "function", "name": "f", "content": "x"}]},
            "messages[0].role",
            "unsupported_value",
        ),
    ],
)
async def test_what_cannot_be_honoured_is_a_400_naming_it(
    build_app: AppFactory, fields: dict[str, Any], param: str | None, code: str | None
) -> None:
    model = ScriptedModel(["never"])
    response = await post(build_app, model, body(**fields))

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert model.calls == []


async def test_a_session_refuses_tool_conversations_rather_than_truncate(
    build_app: AppFactory,
) -> None:
    model = ScriptedModel(["never"])
    response = await post(
        build_app, model, body(tools=[WEATHER_TOOL]), **{"x-session-id": "s-tools"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "X-Session-Id"
    assert model.calls == []
