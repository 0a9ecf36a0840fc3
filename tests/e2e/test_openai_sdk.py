"""The real OpenAI Python SDK against the real server process, backed by a loopback fake
OpenRouter: what an OpenAI client sees is what OpenAI would have sent it, errors included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionUserMessageParam

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script
from tests.server_process import ServerProcess, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KEY = "sdk-internal-key-6c1d"
ROUTES = """
default = "chat"

[routes.chat]
provider = "openrouter"
model = "vendor/chat-model"
base_url = "{base_url}"
max_retries = 0

[routes."backup/v1"]
provider = "openrouter"
model = "vendor/backup-model"
base_url = "{base_url}"
max_retries = 0
"""
USER: ChatCompletionUserMessageParam = {"role": "user", "content": "Say hello"}


class Harness:
    def __init__(self, fake: FakeOpenRouter, server: ServerProcess) -> None:
        self.fake = fake
        self.server = server
        self.base_url = f"{server.base_url}/v1"

    def client(self, api_key: str = KEY) -> AsyncOpenAI:
        # no SDK retries: a test must see the first answer, not a retried one
        return AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=10)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    workdir = tmp_path_factory.mktemp("openai-sdk")
    async with FakeOpenRouter() as fake:
        models = workdir / "models.toml"
        models.write_text(ROUTES.format(base_url=fake.base_url), encoding="utf-8")
        async with running_server(
            workdir,
            INTERNAL_API_KEY=KEY,
            OPENROUTER_API_KEY="sk-or-sdk-test",
            MODELS_FILE=str(models),
        ) as server:
            yield Harness(fake, server)


async def test_a_streamed_completion_with_usage(harness: Harness) -> None:
    harness.fake.enqueue(Script(tokens=["Hel", "lo", " there"]))
    async with harness.client() as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.model == "chat" for c in chunks)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    # the fake counts prompt words (2) and one completion token per token (3)
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (2, 3)
    assert last.usage.total_tokens == 5
    sent = harness.fake.chat_requests[-1].json
    assert sent["model"] == "vendor/chat-model"
    assert sent["messages"] == [USER]


async def test_a_completion_with_the_sync_client(harness: Harness) -> None:
    harness.fake.enqueue(Script(tokens=["Fine", ", thanks"]))

    def complete() -> openai.types.chat.ChatCompletion:
        with OpenAI(base_url=harness.base_url, api_key=KEY, max_retries=0, timeout=10) as client:
            return client.chat.completions.create(
                model="backup/v1",
                messages=[USER],
                temperature=0.3,
                max_tokens=20,
            )

    # the fake upstream runs on this event loop: the blocking client needs its own thread
    completion = await asyncio.to_thread(complete)

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Fine, thanks"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2
    sent = harness.fake.chat_requests[-1].json
    assert sent["model"] == "vendor/backup-model"
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 20)


async def test_models_list_shows_the_routes(harness: Harness) -> None:
    async with harness.client() as client:
        listed = [model async for model in client.models.list()]
        one = await client.models.retrieve("backup/v1")

    assert [model.id for model in listed] == ["chat", "backup/v1"]
    assert {model.owned_by for model in listed} == {"openrouter"}
    assert one.id == "backup/v1"


async def test_a_wrong_key_is_an_authentication_error(harness: Harness) -> None:
    async with harness.client(api_key="not-the-key") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="chat", messages=[USER])
    assert caught.value.code == "invalid_api_key"


async def test_an_unknown_model_is_not_found(harness: Harness) -> None:
    async with harness.client() as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=[USER])
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-4o")
    assert caught.value.code == "model_not_found"


async def test_a_bad_temperature_is_a_bad_request(harness: Harness) -> None:
    async with harness.client() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="chat",
                messages=[USER],
                temperature=2.5,
            )
    assert caught.value.param == "temperature"
    assert caught.value.type == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_an_upstream_429_before_the_first_token_is_a_rate_limit_error(
    harness: Harness, stream: bool
) -> None:
    """Also for streams: an early failure is answered as an HTTP status, before any chunk."""
    harness.fake.enqueue(Script(status=429, error_message="Rate limited upstream"))
    async with harness.client() as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="chat",
                messages=[USER],
                stream=stream,
            )
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"


async def test_a_failure_mid_stream_raises_an_api_error(harness: Harness) -> None:
    # "Part" is its own write; the error follows " more" at once (the adapter may drop " more")
    script = Script(
        tokens=["Part", " more"], token_delay=0.1, in_band_error={"code": 502, "message": "Boom"}
    )
    harness.fake.enqueue(script)
    received: list[str] = []

    async def consume() -> None:
        async with harness.client() as client:
            stream = await client.chat.completions.create(
                model="chat",
                messages=[USER],
                stream=True,
            )
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as caught:
        await consume()

    assert "".join(received).startswith("Part")
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "server_error"
    assert "Boom" in caught.value.message


async def test_the_session_header_keeps_history_and_no_header_keeps_none(
    harness: Harness, tmp_path: Path
) -> None:
    fake = harness.fake
    fake.enqueue(Script(tokens=["First", " answer"]), Script(tokens=["Second"]))
    fake.enqueue(Script(tokens=["Alone"]))
    session = {"X-Session-Id": f"sdk-{tmp_path.name[-20:]}"}
    async with harness.client() as client:
        first = await client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "one"}],
            extra_headers=session,
        )
        await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "two"}],
            extra_headers=session,
            stream=False,
        )
        await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "three"}]
        )

    assert first.headers["x-session-id"] == session["X-Session-Id"]
    second_payload, stateless_payload = (r.json for r in fake.chat_requests[-2:])
    assert second_payload["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "two"},
    ]
    assert stateless_payload["messages"] == [{"role": "user", "content": "three"}]
