"""The chat use case's stateless turns (the OpenAI-compatible API) and the usage kept with turns."""

from __future__ import annotations

import pytest

from aura_agent.adapters.session_store.memory import MemorySessionStore
from aura_agent.application.chat_service import ChatService
from aura_agent.domain.models import GenerationOptions, Message, Role, StreamEnd, TextDelta, Usage
from tests.support import ScriptedModel

USAGE = Usage(prompt_tokens=7, completion_tokens=2, total_tokens=9, cached_tokens=4)


def _store() -> MemorySessionStore:
    return MemorySessionStore(max_sessions=10, max_messages=50, ttl_seconds=60)


def _service(
    model: ScriptedModel, store: MemorySessionStore, system_prompt: str | None = None
) -> ChatService:
    return ChatService(
        model=model, store=store, system_prompt=system_prompt, history_token_budget=10_000
    )


async def test_a_stateless_turn_sends_the_conversation_and_saves_nothing() -> None:
    model = ScriptedModel(["ok"], usage=USAGE)
    store = _store()
    service = _service(model, store, system_prompt="Rules.")
    conversation = [
        Message(role=Role.USER, content="one"),
        Message(role=Role.ASSISTANT, content="uno"),
        Message(role=Role.USER, content="two"),
    ]

    turn = service.prepare_stateless(conversation, GenerationOptions(model="r"))
    events = [event async for event in service.stream_reply(turn)]

    assert model.calls == [
        ([Message(role=Role.SYSTEM, content="Rules."), *conversation], GenerationOptions(model="r"))
    ]
    assert events == [TextDelta("ok"), USAGE, StreamEnd(finish_reason="stop")]
    assert turn.session_id is None
    assert len(store) == 0


def test_a_stateless_turn_needs_a_message() -> None:
    with pytest.raises(ValueError, match="at least one message"):
        _service(ScriptedModel(), _store()).prepare_stateless([], GenerationOptions())


async def test_a_saved_reply_keeps_its_usage_and_the_question_none() -> None:
    store = _store()
    service = _service(ScriptedModel(["Hi"], usage=USAGE), store)

    turn = await service.prepare("s1", "hello", GenerationOptions())
    _ = [event async for event in service.stream_reply(turn)]

    assert await store.load("s1") == [
        Message(role=Role.USER, content="hello"),
        Message(role=Role.ASSISTANT, content="Hi", usage=USAGE),
    ]
