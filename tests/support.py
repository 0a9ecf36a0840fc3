"""Shared helpers for the test suite: app factories, SSE parsing, an in-process real server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any

import httpx
import uvicorn
from httpx_sse import EventSource, ServerSentEvent
from litestar import Litestar

from aura_agent.config import Settings, load_settings
from aura_agent.domain.errors import ChatModelError
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    StreamEnd,
    TextDelta,
    Usage,
)

API_KEY = "test-internal-key-5f1c9a"
OPENROUTER_KEY = "sk-or-v1-test-secret-0123456789abcdef"
OPENROUTER_URL = "https://openrouter.test/api/v1/chat/completions"
AUTH = {"x-api-key": API_KEY}


def make_settings(**overrides: Any) -> Settings:
    """Settings as the environment would give them, with test keys and no `.env` lookup."""
    environ = {
        "AURA_ENV": "test",
        "INTERNAL_API_KEY": API_KEY,
        "OPENROUTER_API_KEY": OPENROUTER_KEY,
        "OPENROUTER_API_URL": OPENROUTER_URL,
        "LOG_FORMAT": "json",
        "KEEPALIVE_SECONDS": "5",
        # pytest-httpx mocks httpx's own transport; real-socket tests choose asyncio
        "UPSTREAM_TRANSPORT": "httpx",
    }
    environ.update({key.upper(): str(value) for key, value in overrides.items()})
    return load_settings(environ, env_file=None)


def parse_sse(body: bytes | str) -> list[ServerSentEvent]:
    """Parse an SSE body with httpx-sse, an independent spec-compliant parser."""
    content = body.encode() if isinstance(body, str) else body
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)
    return list(EventSource(response).iter_sse())


def tokens_of(events: Sequence[ServerSentEvent]) -> list[str]:
    """The data of the unnamed (token) events, in order."""
    return [event.data for event in events if event.event == "message"]


def terminal_event(events: Sequence[ServerSentEvent]) -> ServerSentEvent:
    """The last event; a complete stream ends with `done` or `error`."""
    assert events, "the stream carried no events"
    return events[-1]


class ScriptedModel:
    """A `ChatModel` fake for service and http tests: replays events, records what it was sent."""

    def __init__(
        self,
        tokens: Sequence[str | ChatEvent] = ("Hello", " world"),
        *,
        fail_with: ChatModelError | None = None,
        fail_after: int | None = None,
        first_token_delay: float = 0.0,
        finish: bool = True,
        usage: Usage | None = None,
        finish_reason: str = "stop",
    ) -> None:
        self.tokens = list(tokens)  # a string is a `TextDelta`; other events are sent as they are
        self.finish_reason = finish_reason
        self.usage = usage
        self.fail_with = fail_with
        self.fail_after = fail_after
        self.first_token_delay = first_token_delay
        self.finish = finish
        self.calls: list[tuple[list[Message], GenerationOptions]] = []
        self.closed = 0

    @property
    def provider(self) -> str:
        return "scripted"

    @property
    def default_model(self) -> str:
        return "scripted-model"

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        self.calls.append((list(messages), options))
        try:
            if self.first_token_delay:
                await asyncio.sleep(self.first_token_delay)
            for index, token in enumerate(self.tokens):
                if self.fail_with is not None and self.fail_after == index:
                    raise self.fail_with
                yield TextDelta(token) if isinstance(token, str) else token
            if self.fail_with is not None and self.fail_after in (None, len(self.tokens)):
                raise self.fail_with
            if self.usage is not None:
                yield self.usage
            if self.finish:
                yield StreamEnd(finish_reason=self.finish_reason)
        finally:
            self.closed += 1

    async def check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with


@contextlib.asynccontextmanager
async def serve_app(app: Litestar) -> AsyncIterator[str]:
    """Run `app` under a real uvicorn server on 127.0.0.1 (random port); yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=None))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.contextmanager
def counting_tasks() -> Iterator[list[str]]:
    """The qualified names of the coroutines of every task created on the running loop meanwhile.

    Each task start waits for an event-loop iteration, so tasks per request are a cost the
    streaming tests pin down.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    created: list[str] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        created.append(getattr(coro, "__qualname__", repr(coro)))
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield created
    finally:
        loop.set_task_factory(previous)


async def read_http_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request (head and a Content-Length body) as a loopback test server reads it."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)
