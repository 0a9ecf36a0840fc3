"""The OpenAI-compatible adapter: quirks of the many servers that speak Chat Completions.

The behaviour every adapter shares is in test_chat_model_contract.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
from pytest_httpx import HTTPXMock

from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel, models_url
from aura_agent.domain.errors import (
    ChatModelError,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderStreamError,
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
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from aura_agent.testing.openrouter_mock import OPENAI_URL, OpenAIMock, openai_usage, sse_event
from tests.adapter_helpers import NO_OPTIONS, provider_row, stream_events

API_KEY = "sk-proj-unit0123456789abcdefABCDEF"
MESSAGES = [Message(role=Role.SYSTEM, content="Be brief."), Message(role=Role.USER, content="Hi")]
OLLAMA_URL = "http://localhost:11434/v1/chat/completions"


@pytest.fixture
def openai_mock(httpx_mock: HTTPXMock) -> OpenAIMock:
    return OpenAIMock(httpx_mock)


def make_model(client: httpx.AsyncClient, **overrides: Any) -> OpenAICompatibleChatModel:
    kwargs: dict[str, Any] = {
        "client": client,
        "url": OPENAI_URL,
        "api_key": API_KEY,
        "default_model": "gpt-4o-mini",
        "default_temperature": 0.3,
        "default_max_tokens": 500,
        "first_token_timeout": 5.0,
        **provider_row("openai"),
    }
    kwargs.update(overrides)
    return OpenAICompatibleChatModel(**kwargs)


@pytest.fixture
def model(http_client: httpx.AsyncClient) -> OpenAICompatibleChatModel:
    return make_model(http_client)


async def collect(
    model: OpenAICompatibleChatModel, options: GenerationOptions = NO_OPTIONS
) -> list[ChatEvent]:
    return await stream_events(model, MESSAGES, options)


async def failure(model: OpenAICompatibleChatModel) -> ChatModelError:
    with pytest.raises(ChatModelError) as info:
        await collect(model)
    return info.value


# -- the request ----------------------------------------------------------------------------------


async def test_payload_asks_for_usage_and_uses_max_tokens(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["a"])

    await collect(model)

    assert openai_mock.last_payload() == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": True,
        "temperature": 0.3,
        "max_tokens": 500,
        "stream_options": {"include_usage": True},
    }


async def test_options_override_the_defaults(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["a"])

    await collect(model, GenerationOptions(model="gpt-4.1", temperature=0.0, max_tokens=7))

    payload = openai_mock.last_payload()
    assert (payload["model"], payload["temperature"], payload["max_tokens"]) == ("gpt-4.1", 0.0, 7)


async def test_bearer_key_and_stream_headers(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["a"])

    await collect(model)

    request = openai_mock.requests()[-1]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize("api_key", [None, ""])
async def test_no_authorization_header_without_a_key(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock, api_key: str | None
) -> None:
    ollama = OpenAIMock(httpx_mock, url=OLLAMA_URL)
    ollama.add_stream(["a"])
    model = make_model(
        http_client, url=OLLAMA_URL, api_key=api_key, provider="ollama", label="Ollama"
    )

    assert await collect(model) == [
        TextDelta("a"),
        Usage(prompt_tokens=10, completion_tokens=1, total_tokens=11),
        StreamEnd(finish_reason="stop"),
    ]
    assert "Authorization" not in ollama.requests()[-1].headers


async def test_extra_body_and_headers_are_added_but_cannot_replace_core_fields(
    http_client: httpx.AsyncClient, openai_mock: OpenAIMock
) -> None:
    model = make_model(
        http_client,
        extra_body={"top_k": 20, "model": "hijacked", "stream": False},
        extra_headers={"X-Tenant": "aura"},
    )
    openai_mock.add_stream(["a"])

    await collect(model)

    payload = openai_mock.last_payload()
    assert payload["top_k"] == 20
    assert (payload["model"], payload["stream"]) == ("gpt-4o-mini", True)
    assert openai_mock.requests()[-1].headers["X-Tenant"] == "aura"


# -- stream_options rejected ---------------------------------------------------------------------

# What real servers answer when they do not know `stream_options` (Azure, xAI, Mistral).
_AZURE = (400, {"error": {"message": "Unrecognized request argument supplied: stream_options"}})
_XAI = (400, {"error": "Argument not supported: stream_options"})
_MISTRAL = (
    422,
    {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "stream_options", "include_usage"],
                    "msg": "Extra inputs are not permitted",
                }
            ]
        },
        "type": "invalid_request_error",
    },
)


@pytest.mark.parametrize(
    ("status", "body"), [_AZURE, _XAI, _MISTRAL], ids=["azure", "xai", "mistral"]
)
async def test_rejected_stream_options_are_dropped_once_and_for_good(
    model: OpenAICompatibleChatModel,
    openai_mock: OpenAIMock,
    httpx_mock: HTTPXMock,
    status: int,
    body: dict[str, Any],
) -> None:
    httpx_mock.add_response(url=OPENAI_URL, method="POST", status_code=status, json=body)
    openai_mock.add_stream(["first"], usage=None)
    openai_mock.add_stream(["second"], usage=None)

    first = await collect(model)
    second = await collect(model)

    assert first == [TextDelta("first"), StreamEnd(finish_reason="stop")]
    assert second == [TextDelta("second"), StreamEnd(finish_reason="stop")]
    sent = openai_mock.payloads()
    assert ["stream_options" in p for p in sent] == [True, False, False]
    assert sent[0]["messages"] == sent[1]["messages"]


async def test_a_failed_retry_reports_its_own_error_and_keeps_asking_for_usage(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    # "unrecognized" hints at stream_options, but the retry shows the model name was the problem.
    openai_mock.add_http_error(400, "unrecognized model: gpt-9")
    openai_mock.add_http_error(400, "unrecognized model: gpt-9 (second answer)")
    openai_mock.add_stream(["ok"])

    error = await failure(model)
    await collect(model)

    assert type(error) is ProviderBadRequest
    assert "second answer" in str(error)
    assert ["stream_options" in p for p in openai_mock.payloads()] == [True, False, True]


async def test_an_unrelated_400_is_not_retried(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_http_error(400, "Invalid value for 'temperature'")

    error = await failure(model)

    assert type(error) is ProviderBadRequest
    assert len(openai_mock.requests()) == 1


async def test_include_usage_false_never_sends_stream_options(
    http_client: httpx.AsyncClient, openai_mock: OpenAIMock
) -> None:
    model = make_model(http_client, include_usage=False)
    openai_mock.add_stream(["a"], usage=None)

    await collect(model)

    assert "stream_options" not in openai_mock.last_payload()


# -- streams --------------------------------------------------------------------------------------


async def test_an_endpoint_that_never_sends_usage_still_ends_cleanly(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["a", "b"], usage=None)

    assert await collect(model) == [TextDelta("a"), TextDelta("b"), StreamEnd(finish_reason="stop")]


async def test_usage_details_are_read(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["a"], usage=openai_usage(50, 9, reasoning_tokens=4, cached_tokens=32))

    events = await collect(model)

    assert events[-2] == Usage(
        prompt_tokens=50, completion_tokens=9, total_tokens=59, reasoning_tokens=4, cached_tokens=32
    )


async def test_finish_reason_is_passed_on(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_stream(["cut"], finish_reason="length")

    assert (await collect(model))[-1] == StreamEnd(finish_reason="length")


async def test_an_error_object_inside_a_200_stream_is_an_error(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    error = {
        "message": "The server had an error while processing your request",
        "type": "server_error",
    }
    openai_mock.add_sse(
        [sse_event({"choices": [{"delta": {"content": "a"}}]}), sse_event({"error": error})]
    )

    raised = await failure(model)

    assert type(raised) is ProviderStreamError
    assert "The server had an error" in str(raised)


async def test_a_json_error_in_a_200_uses_the_error_type(
    model: OpenAICompatibleChatModel, httpx_mock: HTTPXMock
) -> None:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "code": None}}
    httpx_mock.add_response(url=OPENAI_URL, method="POST", json=body)

    assert type(await failure(model)) is ProviderBadRequest


async def test_a_plain_string_error_body_is_quoted(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    model = make_model(http_client, url=OLLAMA_URL, api_key=None, provider="ollama", label="Ollama")
    body = {"error": 'model "llama9" not found, try pulling it first'}
    httpx_mock.add_response(url=OLLAMA_URL, method="POST", status_code=404, json=body)

    error = await failure(model)

    assert type(error) is ProviderBadRequest
    assert (
        str(error) == 'Ollama rejected the request (model "llama9" not found, try pulling it first)'
    )


async def test_the_provider_name_labels_errors(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    model = make_model(http_client, url=OLLAMA_URL, api_key=None, provider="ollama", label="Ollama")
    OpenAIMock(httpx_mock, url=OLLAMA_URL).add_connect_error()

    error = await failure(model)

    assert type(error) is ProviderUnavailable
    assert (str(error), error.provider, model.provider) == (
        "Could not reach Ollama",
        "ollama",
        "ollama",
    )


async def test_a_key_of_any_shape_is_scrubbed_from_errors(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    # Groq keys do not look like `sk-...`; only the configured key itself can recognise them.
    groq_url = "https://api.groq.com/openai/v1/chat/completions"
    groq_key = "gsk_0123456789abcdefghijklmnopqrstuvwxyz"
    model = make_model(http_client, url=groq_url, api_key=groq_key, **provider_row("groq"))
    OpenAIMock(httpx_mock, url=groq_url).add_http_error(401, f"Invalid API Key: {groq_key}")

    error = await failure(model)

    assert type(error) is ProviderAuthError
    assert str(error) == "Groq rejected the API key (Invalid API Key: ***)"


# -- check() --------------------------------------------------------------------------------------


async def test_check_probes_the_models_endpoint_with_the_key(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_models()

    await model.check()

    [request] = openai_mock.httpx_mock.get_requests()
    assert (request.method, str(request.url)) == ("GET", "https://api.openai.com/v1/models")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_check_without_a_key_sends_none(
    http_client: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    OpenAIMock(httpx_mock, url=OLLAMA_URL).add_models()

    await make_model(http_client, url=OLLAMA_URL, api_key=None).check()

    assert "Authorization" not in httpx_mock.get_requests()[0].headers


async def test_check_rejected_key(
    model: OpenAICompatibleChatModel, openai_mock: OpenAIMock
) -> None:
    openai_mock.add_models(401)

    with pytest.raises(ProviderAuthError, match="OpenAI rejected the API key"):
        await model.check()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/models"),
        (
            "http://h:8000/v1/chat/completions?api-version=1",
            "http://h:8000/v1/models?api-version=1",
        ),
        ("http://h:8000/custom/", "http://h:8000/custom/models"),
    ],
)
def test_models_url(url: str, expected: str) -> None:
    assert models_url(url) == expected


# -- over real sockets ----------------------------------------------------------------------------


async def test_streams_from_the_loopback_fake_as_an_openai_server() -> None:
    async with (
        FakeOpenRouter(prefix="/v1") as fake,
        httpx.AsyncClient(trust_env=False, timeout=5.0) as client,
    ):
        fake.enqueue(Script(tokens=["Hi", " there"], token_delay=0.01))
        model = make_model(client, url=fake.chat_url, api_key=None, provider="vllm", label="vLLM")

        events = await collect(model)

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hi", " there"]
    assert isinstance(events[-2], Usage)
    assert events[-1] == StreamEnd(finish_reason="stop")
    record = fake.chat_requests[0]
    assert record.path == "/v1/chat/completions"
    assert record.json["stream_options"] == {"include_usage": True}
    assert "authorization" not in record.headers
    assert msgspec.json.decode(record.body)["max_tokens"] == 500
