"""The chat use case, tested with fakes: what is sent to the model, what is saved and when."""

from __future__ import annotations

import pytest

from aura_agent.adapters.session_store.memory import MemorySessionStore
from aura_agent.application.chat_service import ChatService
from aura_agent.domain.errors import (
    ProviderRateLimited,
    ProviderStreamError,
    SessionStoreUnavailable,
    TurnNotSavedError,
)
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    StreamEnd,
    TextDelta,
)
from tests.support import ScriptedModel


class FailingAppendStore(MemorySessionStore):
    """A store whose writes fail, as Redis does when it goes away mid-request."""

    async def append_turn(self, session_id: str, user: Message, assistant: Message) -> None:
        raise SessionStoreUnavailable("the session store is unavailable")


def _service(model: ScriptedModel, store: MemorySessionStore | None = None) -> ChatService:
    return ChatService(
        model=model,
        store=store
        if store is not None
        else MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60),
        system_prompt=None,
        history_token_budget=10_000,
    )


async def _run(service: ChatService, session: str, text: str) -> list[ChatEvent]:
    turn = await service.prepare(session, text, GenerationOptions())
    return [event async for event in service.stream_reply(turn)]


async def test_reply_is_streamed_then_the_turn_is_saved() -> None:
    store = MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60)
    service = _service(ScriptedModel(["Hi", " there"]), store)
    events = await _run(service, "s1", "hello")
    assert events == [TextDelta("Hi"), TextDelta(" there"), StreamEnd(finish_reason="stop")]
    assert await store.load("s1") == [
        Message(role=Role.USER, content="hello"),
        Message(role=Role.ASSISTANT, content="Hi there"),
    ]


async def test_second_turn_sends_the_first_exactly_once() -> None:
    model = ScriptedModel(["one"])
    service = _service(model)
    await _run(service, "s", "first")
    await _run(service, "s", "second")
    sent, _ = model.calls[1]
    assert [m.content for m in sent] == ["first", "one", "second"]


async def test_a_failed_stream_saves_nothing() -> None:
    store = MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60)
    model = ScriptedModel(
        ["a", "b"], fail_with=ProviderRateLimited("slow down", provider="x"), fail_after=1
    )
    service = _service(model, store)
    with pytest.raises(ProviderRateLimited):
        await _run(service, "s", "hello")
    assert await store.load("s") == []


async def test_a_stream_without_an_end_is_an_error_and_saves_nothing() -> None:
    store = MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60)
    service = _service(ScriptedModel(["partial"], finish=False), store)
    with pytest.raises(ProviderStreamError):
        await _run(service, "s", "hello")
    assert await store.load("s") == []


async def test_a_failed_save_is_reported_before_the_end_event() -> None:
    store = FailingAppendStore(max_sessions=10, max_messages=50, ttl_seconds=60)
    service = _service(ScriptedModel(["ok"]), store)
    turn = await service.prepare("s", "hello", GenerationOptions())
    seen: list[ChatEvent] = []

    async def consume() -> None:
        async for event in service.stream_reply(turn):
            seen.append(event)

    with pytest.raises(TurnNotSavedError, match="not saved"):
        await consume()
    assert seen == [TextDelta("ok")]


async def test_system_prompt_leads_the_prompt() -> None:
    model = ScriptedModel(["x"])
    service = ChatService(
        model=model,
        store=MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60),
        system_prompt="You are terse.",
        history_token_budget=1000,
    )
    await _run(service, "s", "hi")
    sent, _ = model.calls[0]
    assert sent[0] == Message(role=Role.SYSTEM, content="You are terse.")


async def test_options_reach_the_model() -> None:
    model = ScriptedModel(["x"])
    service = _service(model)
    options = GenerationOptions(model="m", temperature=1.5, max_tokens=7)
    turn = await service.prepare("s", "hi", options)
    _ = [event async for event in service.stream_reply(turn)]
    assert model.calls[0][1] == options
