"""Behaviour every `SessionStore` must have, written once and run against each implementation.

Subclass `SessionStoreContract` in a `Test...` class and override the async `store` fixture to
yield a fresh, empty store built with `max_messages=SessionStoreContract.MAX_MESSAGES`.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from aura_agent.domain.models import Message, Role, Usage
from aura_agent.domain.ports import SessionStore


def user(text: str) -> Message:
    return Message(role=Role.USER, content=text)


def assistant(text: str) -> Message:
    return Message(role=Role.ASSISTANT, content=text)


def turn(index: int) -> tuple[Message, Message]:
    """The index-th turn: a question and its own answer, so pairing can be checked."""
    return user(f"question {index}"), assistant(f"answer {index}")


class SessionStoreContract:
    """The `SessionStore` contract; not collected by itself (its name does not start with Test)."""

    MAX_MESSAGES: ClassVar[int] = 6

    @pytest.fixture
    async def store(self) -> SessionStore:
        """Abstract: subclasses return (or yield) an empty store with max_messages=MAX_MESSAGES."""
        raise NotImplementedError("subclasses provide the store fixture")

    async def test_unknown_session_loads_empty(self, store: SessionStore) -> None:
        assert await store.load("nobody") == []

    async def test_append_then_load_returns_user_then_assistant(self, store: SessionStore) -> None:
        await store.append_turn("s1", user("hi"), assistant("hello"))

        history = await store.load("s1")

        assert history == [user("hi"), assistant("hello")]
        assert isinstance(history, list)
        assert all(type(message) is Message for message in history)
        assert [message.role for message in history] == [Role.USER, Role.ASSISTANT]

    async def test_turns_accumulate_oldest_first(self, store: SessionStore) -> None:
        for index in range(3):
            await store.append_turn("s1", *turn(index))

        assert await store.load("s1") == [*turn(0), *turn(1), *turn(2)]

    async def test_delete_forgets_the_session(self, store: SessionStore) -> None:
        await store.append_turn("s1", *turn(0))

        assert await store.delete("s1") is True
        assert await store.load("s1") == []
        assert await store.delete("s1") is False

    async def test_delete_of_unknown_session_is_false(self, store: SessionStore) -> None:
        assert await store.delete("never-seen") is False

    async def test_sessions_are_isolated(self, store: SessionStore) -> None:
        await store.append_turn("alice", *turn(1))
        await store.append_turn("bob", *turn(2))
        await store.delete("bob")

        assert await store.load("alice") == [*turn(1)]
        assert await store.load("bob") == []

    async def test_trim_keeps_the_newest_messages(self, store: SessionStore) -> None:
        turns = [turn(index) for index in range(10)]
        for index, pair in enumerate(turns):
            await store.append_turn("s1", *pair)
            history = await store.load("s1")
            assert len(history) <= self.MAX_MESSAGES
            expected = [message for kept in turns[: index + 1] for message in kept]
            assert history == expected[-len(history) :]

        history = await store.load("s1")
        assert len(history) == self.MAX_MESSAGES - self.MAX_MESSAGES % 2
        assert history[0].role is Role.USER  # whole turns only

    async def test_loaded_history_is_a_copy(self, store: SessionStore) -> None:
        await store.append_turn("s1", *turn(0))
        history = await store.load("s1")
        history.clear()

        assert await store.load("s1") == [*turn(0)]

    async def test_content_round_trips_exactly(self, store: SessionStore) -> None:
        odd = user('héllo wörld 🌍 — 中文\n\r\n\ttabs \x00 nul \\ "quotes" {json: true}')
        empty = assistant("")
        await store.append_turn("s1", odd, empty)

        assert await store.load("s1") == [odd, empty]

    async def test_reply_usage_round_trips(self, store: SessionStore) -> None:
        usage = Usage(
            prompt_tokens=30,
            completion_tokens=2,
            total_tokens=32,
            reasoning_tokens=5,
            cached_tokens=20,
        )
        reply = Message(role=Role.ASSISTANT, content="counted", usage=usage)
        await store.append_turn("s1", user("q"), reply)
        await store.append_turn("s1", *turn(1))  # and a reply without usage, as before

        history = await store.load("s1")
        assert history == [user("q"), reply, *turn(1)]
        assert history[1].usage == usage
        assert history[3].usage is None

    async def test_concurrent_turns_on_one_session_stay_paired(self, store: SessionStore) -> None:
        count = self.MAX_MESSAGES // 2
        await asyncio.gather(*(store.append_turn("s1", *turn(index)) for index in range(count)))

        history = await store.load("s1")
        assert len(history) == 2 * count
        for question, answer in zip(history[::2], history[1::2], strict=True):
            assert question.role is Role.USER
            assert answer == assistant(question.content.replace("question", "answer"))

    async def test_check_passes_when_healthy(self, store: SessionStore) -> None:
        await store.check()
