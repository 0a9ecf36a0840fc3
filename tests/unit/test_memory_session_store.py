"""MemorySessionStore: the shared contract plus its own bounds (LRU, idle TTL, copies)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura_agent.adapters.session_store.memory import MemorySessionStore
from aura_agent.domain.ports import SessionStore
from tests.session_store_contract import SessionStoreContract, turn


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_store(
    *, max_sessions: int = 100, max_messages: int = 6, ttl: float = 60.0, clock: FakeClock
) -> MemorySessionStore:
    return MemorySessionStore(
        max_sessions=max_sessions, max_messages=max_messages, ttl_seconds=ttl, clock=clock
    )


class TestMemorySessionStoreContract(SessionStoreContract):
    @pytest.fixture
    async def store(self) -> SessionStore:
        return make_store(max_messages=self.MAX_MESSAGES, clock=FakeClock())


def test_satisfies_the_port() -> None:
    store: SessionStore = make_store(clock=FakeClock())
    assert store is not None


async def test_least_recently_used_session_is_evicted() -> None:
    store = make_store(max_sessions=2, clock=FakeClock())
    await store.append_turn("a", *turn(1))
    await store.append_turn("b", *turn(2))
    await store.load("a")  # a is now more recent than b

    await store.append_turn("c", *turn(3))

    assert len(store) == 2
    assert await store.load("b") == []
    assert await store.load("a") == [*turn(1)]
    assert await store.load("c") == [*turn(3)]


async def test_writing_counts_as_use_for_eviction() -> None:
    store = make_store(max_sessions=2, clock=FakeClock())
    await store.append_turn("a", *turn(1))
    await store.append_turn("b", *turn(2))
    await store.append_turn("a", *turn(3))

    await store.append_turn("c", *turn(4))

    assert await store.load("a") == [*turn(1), *turn(3)]
    assert await store.load("b") == []


async def test_idle_session_expires_after_ttl() -> None:
    clock = FakeClock()
    store = make_store(ttl=60, clock=clock)
    await store.append_turn("a", *turn(1))

    clock.advance(59.9)
    assert await store.load("a") == [*turn(1)]  # loading refreshes the idle timer
    clock.advance(59.9)
    assert await store.load("a") == [*turn(1)]
    clock.advance(60)
    assert await store.load("a") == []
    assert await store.delete("a") is False


async def test_expired_sessions_are_purged_not_just_hidden() -> None:
    clock = FakeClock()
    store = make_store(ttl=10, clock=clock)
    for index in range(50):
        await store.append_turn(f"old-{index}", *turn(index))
    clock.advance(10)

    await store.append_turn("new", *turn(0))

    assert len(store) == 1


async def test_expired_session_starts_afresh_when_written() -> None:
    clock = FakeClock()
    store = make_store(ttl=10, clock=clock)
    await store.append_turn("a", *turn(1))
    clock.advance(11)

    await store.append_turn("a", *turn(2))

    assert await store.load("a") == [*turn(2)]


async def test_odd_limit_keeps_whole_turns() -> None:
    store = make_store(max_messages=5, clock=FakeClock())
    for index in range(4):
        await store.append_turn("a", *turn(index))

    assert await store.load("a") == [*turn(2), *turn(3)]


async def test_mutating_a_loaded_copy_does_not_change_the_store() -> None:
    store = make_store(clock=FakeClock())
    await store.append_turn("a", *turn(1))

    first = await store.load("a")
    first.append(first[0])
    first[0] = first[1]

    assert await store.load("a") == [*turn(1)]


async def test_concurrent_appends_on_one_session_are_all_kept() -> None:
    store = make_store(max_messages=400, clock=FakeClock())

    await asyncio.gather(*(store.append_turn("a", *turn(index)) for index in range(200)))

    history = await store.load("a")
    assert history == [message for index in range(200) for message in turn(index)]


@pytest.mark.parametrize(
    ("max_sessions", "max_messages", "ttl"), [(0, 6, 1.0), (1, 1, 1.0), (1, 6, 0.0)]
)
def test_rejects_nonsense_limits(max_sessions: int, max_messages: int, ttl: float) -> None:
    with pytest.raises(ValueError, match="must"):
        MemorySessionStore(max_sessions=max_sessions, max_messages=max_messages, ttl_seconds=ttl)


@given(turns=st.integers(min_value=0, max_value=40), max_messages=st.integers(2, 30))
def test_history_is_always_the_newest_whole_turns(turns: int, max_messages: int) -> None:
    async def scenario() -> None:
        store = make_store(max_messages=max_messages, clock=FakeClock())
        for index in range(turns):
            await store.append_turn("a", *turn(index))
        everything = [message for index in range(turns) for message in turn(index)]
        keep = min(len(everything), max_messages - max_messages % 2)
        assert await store.load("a") == everything[len(everything) - keep :]

    asyncio.run(scenario())
