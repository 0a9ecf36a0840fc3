"""`SSEResponse` over a fake ASGI server: what it costs per request (tasks), keep-alives only
while the first token is late and never overlapping a token, the client leaving at any point,
outer cancellations, the deferred status of the OpenAI API, and a client that does not read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from aura_agent.domain.errors import ProviderRateLimited
from aura_agent.domain.models import ChatEvent, StreamEnd, TextDelta
from aura_agent.http.chat.stream import sse_body
from aura_agent.http.openai.chunks import ChunkEncoder
from aura_agent.http.openai.errors import OpenAIError
from aura_agent.http.openai.stream import chunk_stream
from aura_agent.http.record import RequestRecord
from aura_agent.http.sse import response as sse_response
from aura_agent.http.sse.control import ActiveStream, StreamRegistry
from aura_agent.http.sse.encoding import DONE, KEEPALIVE, encode_data
from aura_agent.http.sse.response import DeferredStart, SSEResponse
from tests.support import counting_tasks

KEEPALIVE_SECONDS = 0.05


class Client:
    """The server side of one connection, as uvicorn behaves: `receive()` waits until the client
    leaves or the response is complete, and `send()` after the client left does nothing."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.left = False
        self.stall: asyncio.Event | None = None  # set: the socket is writable again
        self.in_flight = 0
        self.most_in_flight = 0
        self._wake = asyncio.Event()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages)

    @property
    def statuses(self) -> list[int]:
        return [m["status"] for m in self.messages if m["type"] == "http.response.start"]

    def leave(self) -> None:
        self.left = True
        self._wake.set()
        if self.stall is not None:
            self.stall.set()  # uvicorn resumes writing on connection_lost

    async def receive(self) -> dict[str, Any]:
        await self._wake.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.stall is not None and not self.stall.is_set():
                await self.stall.wait()
            if self.left:
                return
            self.messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self._wake.set()
        finally:
            self.in_flight -= 1


class Model:
    """Model events: optionally a first-token delay, then tokens; records how it ended."""

    def __init__(
        self,
        tokens: tuple[str, ...] = ("a", "b"),
        *,
        delay: float = 0.0,
        fail: Exception | None = None,
    ) -> None:
        self.tokens = tokens
        self.delay = delay
        self.fail = fail
        self.closed = asyncio.Event()
        self.cancelled = False
        self.started = asyncio.Event()

    async def events(self) -> AsyncGenerator[ChatEvent, None]:
        self.started.set()
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail is not None:
                raise self.fail
            for token in self.tokens:
                yield TextDelta(token)
            yield StreamEnd()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed.set()


def _stream(total_timeout: float = 30.0) -> tuple[StreamRegistry, ActiveStream]:
    registry = StreamRegistry(max_streams=0, total_timeout=total_timeout, grace_seconds=0)
    stream = registry.open(RequestRecord("r", "POST", "/chat"))
    assert stream is not None
    return registry, stream


def _chat(model: Model, stream: ActiveStream) -> SSEResponse:
    body = sse_body(model.events(), record=stream.record)
    return SSEResponse(body, headers={}, stream=stream, keepalive_seconds=KEEPALIVE_SECONDS)


async def _serve(response: SSEResponse, client: Client) -> None:
    await response({"type": "http"}, client.receive, client.send)  # type: ignore[arg-type]


async def test_a_prompt_first_token_costs_one_helper_task_and_no_keepalive() -> None:
    registry, stream = _stream()
    client = Client()
    with counting_tasks() as created:
        await _serve(_chat(Model(), stream), client)
        await asyncio.sleep(KEEPALIVE_SECONDS * 3)  # no keep-alive timer left behind

    assert created == ["SSEResponse._watch"]
    assert client.statuses == [200]
    assert client.body == encode_data("a") + encode_data("b") + DONE
    assert KEEPALIVE not in client.body
    assert len(registry) == 0, "the stream slot was released"
    assert stream.record.outcome == "completed"


async def test_keepalives_flow_while_the_first_token_is_late_and_stop_when_it_comes() -> None:
    registry, stream = _stream()
    client = Client()
    await _serve(_chat(Model(delay=KEEPALIVE_SECONDS * 3.5), stream), client)

    body = client.body
    assert body.startswith(KEEPALIVE)
    assert body.count(KEEPALIVE) == 3
    assert body.endswith(encode_data("a") + encode_data("b") + DONE)
    assert client.most_in_flight == 1
    assert len(registry) == 0


async def test_the_first_token_waits_for_a_keepalive_being_written() -> None:
    """A keep-alive stuck on a slow socket is finished before the first token is written."""
    _, stream = _stream()
    client = Client()
    model = Model(delay=KEEPALIVE_SECONDS * 1.5)
    serving = asyncio.create_task(_serve(_chat(model, stream), client))
    await asyncio.sleep(KEEPALIVE_SECONDS * 0.5)
    client.stall = asyncio.Event()  # the first keep-alive will wait on it
    await asyncio.sleep(KEEPALIVE_SECONDS * 2)  # the model answers meanwhile
    assert client.in_flight == 1, "only the keep-alive is being written"
    assert client.body == b""
    client.stall.set()
    await serving

    assert client.most_in_flight == 1
    assert client.body == KEEPALIVE + encode_data("a") + encode_data("b") + DONE


@pytest.mark.parametrize("during", ["keep-alives", "reply"])
async def test_a_client_leaving_cancels_the_upstream_read_at_once(during: str) -> None:
    registry, stream = _stream()
    client = Client()
    model = Model(delay=30) if during == "keep-alives" else Model()

    async def slow_after_first() -> AsyncGenerator[ChatEvent, None]:
        model.started.set()
        try:
            yield TextDelta("a")
            await asyncio.sleep(30)
            yield TextDelta("never")
        except asyncio.CancelledError:
            model.cancelled = True
            raise
        finally:
            model.closed.set()

    events = model.events() if during == "keep-alives" else slow_after_first()
    body = sse_body(events, record=stream.record)
    response = SSEResponse(body, headers={}, stream=stream, keepalive_seconds=KEEPALIVE_SECONDS)
    serving = asyncio.create_task(_serve(response, client))
    await asyncio.sleep(KEEPALIVE_SECONDS * 2.5)
    assert client.body.startswith(KEEPALIVE if during == "keep-alives" else encode_data("a"))
    client.leave()
    async with asyncio.timeout(1):
        await model.closed.wait()
        await serving  # ends normally: the disconnect is not an error

    assert model.cancelled, "the upstream read was cancelled where it waited"
    assert stream.record.outcome == "client_disconnected"
    assert len(registry) == 0
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_the_request_task_is_not_left_cancelled_after_the_client_left() -> None:
    """The cancellation that ends the relay is consumed: what runs after it is not cancelled."""
    _, stream = _stream()
    client = Client()
    after: list[int] = []

    async def request() -> None:
        await _serve(_chat(Model(delay=30), stream), client)
        task = asyncio.current_task()
        assert task is not None
        after.append(task.cancelling())
        await asyncio.sleep(0)  # would raise if a cancellation were still pending

    serving = asyncio.create_task(request())
    await asyncio.sleep(KEEPALIVE_SECONDS)
    client.leave()
    await serving
    assert after == [0]


@pytest.mark.parametrize("with_disconnect", [False, True])
async def test_an_outer_cancellation_still_propagates(with_disconnect: bool) -> None:
    registry, stream = _stream()
    client = Client()
    model = Model(delay=30)
    serving = asyncio.create_task(_serve(_chat(model, stream), client))
    await model.started.wait()
    if with_disconnect:
        client.leave()
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert model.closed.is_set()
    assert len(registry) == 0


async def test_the_time_limit_cuts_a_stream_waiting_for_its_first_token() -> None:
    registry, stream = _stream(total_timeout=KEEPALIVE_SECONDS * 2.5)
    client = Client()
    model = Model(delay=30)
    await _serve(_chat(model, stream), client)

    assert model.cancelled
    assert client.body.startswith(KEEPALIVE + KEEPALIVE + b"event: error\n")
    assert client.messages[-1] == sse_response._END
    assert stream.record.outcome == "error:total_timeout"
    assert len(registry) == 0


async def test_a_client_that_does_not_read_during_keepalives_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keep-alive stuck on the full socket is abandoned when the time limit cuts the stream;
    the final write gets FINAL_WRITE_SECONDS, then the response is left unfinished."""
    monkeypatch.setattr(sse_response, "FINAL_WRITE_SECONDS", 0.1)
    registry, stream = _stream(total_timeout=KEEPALIVE_SECONDS * 3)
    client = Client()
    model = Model(delay=30)
    serving = asyncio.create_task(_serve(_chat(model, stream), client))
    await model.started.wait()  # the status line went out
    client.stall = asyncio.Event()  # never set: the client reads nothing from now on
    async with asyncio.timeout(2):
        await serving

    assert model.cancelled
    assert client.messages == [client.messages[0]]  # only the status line went out
    assert client.in_flight == 0, "no write left running"
    assert stream.record.outcome == "error:total_timeout"
    assert len(registry) == 0


# -- the OpenAI API: the status waits for the first token or the first keep-alive --------------


def _completion(model: Model, stream: ActiveStream) -> SSEResponse:
    encoder = ChunkEncoder("chatcmpl-1", 0, "m", include_usage=False)
    start = DeferredStart(opening=encoder.role)
    body = chunk_stream(
        model.events(), encoder, start=start, record=stream.record, include_usage=False
    )
    return SSEResponse(
        body, headers={}, stream=stream, keepalive_seconds=KEEPALIVE_SECONDS, deferred=start
    )


async def test_a_failure_before_the_first_keepalive_is_raised_before_the_status() -> None:
    registry, stream = _stream()
    client = Client()
    model = Model(delay=KEEPALIVE_SECONDS / 2, fail=ProviderRateLimited("slow", provider="p"))
    with pytest.raises(OpenAIError) as raised:
        await _serve(_completion(model, stream), client)

    assert raised.value.status_code == 429
    assert client.messages == []
    assert model.closed.is_set()
    assert len(registry) == 0


async def test_a_failure_after_the_first_keepalive_is_an_event() -> None:
    registry, stream = _stream()
    client = Client()
    model = Model(delay=KEEPALIVE_SECONDS * 2.5, fail=ProviderRateLimited("slow", provider="p"))
    await _serve(_completion(model, stream), client)

    assert client.statuses == [200]
    encoder = ChunkEncoder("chatcmpl-1", 0, "m", include_usage=False)
    body = client.body
    assert body.startswith(encoder.role + KEEPALIVE)
    assert body.count(encoder.role) == 1
    assert b'"code":"rate_limit_exceeded"' in body
    assert len(registry) == 0


async def test_a_prompt_completion_sends_its_status_with_the_first_chunk() -> None:
    _, stream = _stream()
    client = Client()
    with counting_tasks() as created:
        await _serve(_completion(Model(), stream), client)

    assert len(created) == 1
    encoder = ChunkEncoder("chatcmpl-1", 0, "m", include_usage=False)
    assert client.statuses == [200]
    assert client.messages[1]["body"] == encoder.role + encoder.content("a")
    assert client.body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("fail", [None, ProviderRateLimited("slow down", provider="p")])
async def test_the_last_event_and_the_end_of_the_body_go_in_one_send(
    fail: Exception | None,
) -> None:
    _, stream = _stream()
    client = Client()
    await _serve(_chat(Model(fail=fail), stream), client)

    bodies = [m for m in client.messages if m["type"] == "http.response.body"]
    last = bodies[-1]
    assert last["more_body"] is False
    assert last["body"].endswith(DONE if fail is None else b"\n\n")
    assert (b"event: error" in last["body"]) is (fail is not None)
    assert all(m["more_body"] for m in bodies[:-1])
    assert all(m["body"] for m in bodies)  # no empty end-of-body message of its own
