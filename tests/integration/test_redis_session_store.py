"""RedisSessionStore against a real Redis: the shared contract, Redis specifics, and outages.

Uses the Redis on 127.0.0.1:6379 when one answers, else starts a private redis-server; each
test writes under its own `aura-test:<uuid>:` prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Protocol, cast

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from aura_agent.adapters.session_store.redis import (
    RedisSessionStore,
    close_redis_client,
    create_redis_client,
)
from aura_agent.domain.errors import SessionStoreError, StoreUnavailable
from aura_agent.domain.models import Message, Role
from tests.redis_helpers import (
    HOST,
    LocalRedisServer,
    free_port,
    redis_server_binary,
)
from tests.session_store_contract import SessionStoreContract, assistant, turn, user
from tests.shared_redis import shared_redis_url

TTL = 3_600
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
needs_redis_server = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed (CI provides it)"
)


class StoreFactory(Protocol):
    def __call__(self, *, max_messages: int = 6, ttl: int = TTL) -> RedisSessionStore: ...


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aura-redis-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def redis_url(workdir: Path) -> Iterator[str]:
    """The shared Redis on 6379, or a private one when none listens there."""
    with shared_redis_url(workdir) as url:
        yield url


@pytest.fixture
def prefix() -> str:
    return f"aura-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def raw(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A plain client to look behind the store's back; removes the test's keys afterwards."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def open_store(
    url: str, prefix: str, *, max_messages: int = 6, ttl: int = TTL, socket_timeout: float = 2.0
) -> RedisSessionStore:
    client = create_redis_client(url, cluster=False, socket_timeout=socket_timeout)
    return RedisSessionStore(client, key_prefix=prefix, max_messages=max_messages, ttl_seconds=ttl)


@pytest.fixture
async def make_store(redis_url: str, prefix: str, raw: Redis) -> AsyncIterator[StoreFactory]:
    """Build stores on the shared Redis with the test's prefix; closes them afterwards."""
    opened: list[RedisSessionStore] = []

    def factory(*, max_messages: int = 6, ttl: int = TTL) -> RedisSessionStore:
        store = open_store(redis_url, prefix, max_messages=max_messages, ttl=ttl)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await close_redis_client(store.client)


class TestRedisSessionStoreContract(SessionStoreContract):
    @pytest.fixture
    async def store(self, make_store: StoreFactory) -> RedisSessionStore:
        return make_store(max_messages=self.MAX_MESSAGES)


async def test_ttl_is_set_on_write(make_store: StoreFactory, raw: Redis, prefix: str) -> None:
    store = make_store(ttl=120)
    await store.append_turn("s1", *turn(0))

    assert 100 < await raw.ttl(f"{prefix}session:s1") <= 120


async def test_load_refreshes_the_ttl(make_store: StoreFactory, raw: Redis, prefix: str) -> None:
    store = make_store(ttl=120)
    await store.append_turn("s1", *turn(0))
    await raw.expire(f"{prefix}session:s1", 5)

    await store.load("s1")

    assert await raw.ttl(f"{prefix}session:s1") > 100


async def test_loading_an_unknown_session_creates_nothing(
    make_store: StoreFactory, raw: Redis, prefix: str
) -> None:
    store = make_store()
    await store.load("ghost")

    assert await raw.exists(f"{prefix}session:ghost") == 0


async def test_list_is_trimmed_to_max_messages(
    make_store: StoreFactory, raw: Redis, prefix: str
) -> None:
    store = make_store(max_messages=4)
    for index in range(10):
        await store.append_turn("s1", *turn(index))

    assert await raw.llen(f"{prefix}session:s1") == 4
    assert await store.load("s1") == [*turn(8), *turn(9)]


async def test_odd_limit_keeps_whole_turns(make_store: StoreFactory) -> None:
    store = make_store(max_messages=5)
    for index in range(4):
        await store.append_turn("s1", *turn(index))

    assert await store.load("s1") == [*turn(2), *turn(3)]


async def test_concurrent_turns_are_all_kept_and_paired(make_store: StoreFactory) -> None:
    count = 20
    store = make_store(max_messages=2 * count)

    await asyncio.gather(*(store.append_turn("s1", *turn(index)) for index in range(count)))

    history = await store.load("s1")
    assert len(history) == 2 * count
    seen = set()
    for question, answer in zip(history[::2], history[1::2], strict=True):
        index = int(question.content.removeprefix("question "))
        assert (question, answer) == turn(index)
        seen.add(index)
    assert seen == set(range(count))


@pytest.mark.parametrize(
    "content",
    [
        "emoji 🌍🔥, accents éü, CJK 中文, RTL עברית",
        "line one\nline two\r\nline three\n\n",
        "nul \x00 and control \x1b[31m bytes",
        "x" * 2_000_000,
        "🌍" * 100_000,
    ],
    ids=["unicode", "newlines", "control", "2-MB", "400-KB-of-emoji"],
)
async def test_content_round_trips(make_store: StoreFactory, content: str) -> None:
    store = make_store()
    await store.append_turn("s1", user(content), assistant(content[::-1]))

    assert await store.load("s1") == [user(content), assistant(content[::-1])]


@given(session_id=st.from_regex(SESSION_ID, fullmatch=True))
def test_key_shape_is_fixed_for_every_valid_id(session_id: str) -> None:
    store = RedisSessionStore(
        Redis(), key_prefix="aura:", max_messages=10, ttl_seconds=TTL
    )  # never connects: building a key does no I/O

    key = store.key_for(session_id)

    assert key == f"aura:session:{session_id}"
    assert key.count(":") == 2
    assert "{" not in key  # no accidental Redis Cluster hash tag


@pytest.mark.parametrize("session_id", ["-", "_", "a", "A" * 128, "Ab-9_z", "0123456789"])
async def test_extreme_ids_land_on_their_own_key(
    make_store: StoreFactory, raw: Redis, prefix: str, session_id: str
) -> None:
    store = make_store()
    await store.append_turn(session_id, *turn(1))

    keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
    assert keys == [f"{prefix}session:{session_id}".encode()]


async def test_entries_are_msgpack_messages(
    make_store: StoreFactory, raw: Redis, prefix: str
) -> None:
    store = make_store()
    await store.append_turn("s1", *turn(0))

    entries = cast(list[bytes], await raw.lrange(f"{prefix}session:s1", 0, -1))

    decoded = [msgspec.msgpack.decode(entry, type=Message) for entry in entries]
    assert decoded == [*turn(0)]
    assert msgspec.msgpack.decode(entries[0]) == {"role": "user", "content": "question 0"}


async def test_wrong_type_key_is_a_store_error_not_an_outage(
    make_store: StoreFactory, raw: Redis, prefix: str
) -> None:
    store = make_store()
    await raw.set(f"{prefix}session:s1", "not a list")

    with pytest.raises(SessionStoreError) as caught:
        await store.load("s1")
    assert not isinstance(caught.value, StoreUnavailable)
    with pytest.raises(SessionStoreError):
        await store.append_turn("s1", *turn(0))


async def test_corrupt_entry_is_a_store_error(
    make_store: StoreFactory, raw: Redis, prefix: str
) -> None:
    store = make_store()
    await raw.rpush(f"{prefix}session:s1", b"\xc1 not msgpack")

    with pytest.raises(SessionStoreError, match="could not be read"):
        await store.load("s1")


def operations_of(store: RedisSessionStore) -> list[Callable[[], Awaitable[object]]]:
    """Every store operation, not yet started (so a failed assertion leaves no coroutine behind)."""
    return [
        lambda: store.load("s1"),
        lambda: store.append_turn("s1", *turn(0)),
        lambda: store.delete("s1"),
        store.check,
    ]


async def test_unreachable_redis_fails_fast_without_leaking_the_url() -> None:
    port = free_port()
    client = create_redis_client(
        f"redis://admin:hunter2@{HOST}:{port}/0", cluster=False, socket_timeout=1.0
    )
    store = RedisSessionStore(client, key_prefix="aura:", max_messages=6, ttl_seconds=TTL)
    try:
        for operation in operations_of(store):
            started = time.perf_counter()
            with pytest.raises(StoreUnavailable) as caught:
                await operation()
            assert time.perf_counter() - started < 2.0
            text = str(caught.value)
            assert text == "the session store is unavailable; try again shortly"
            assert "hunter2" not in text
            assert str(port) not in text
    finally:
        await close_redis_client(client)


async def test_a_redis_that_never_answers_fails_within_the_socket_timeout() -> None:
    # A listening socket nobody reads from: connects succeed, replies never come (like a hung
    # server). Timeouts are not retried, so each call costs about one socket_timeout.
    with socket.socket() as silent:
        silent.bind((HOST, 0))
        silent.listen(64)
        url = f"redis://{HOST}:{silent.getsockname()[1]}/0"
        store = open_store(url, "silent:", socket_timeout=0.3)
        try:
            for operation in operations_of(store):
                started = time.perf_counter()
                with pytest.raises(StoreUnavailable):
                    await operation()
                assert time.perf_counter() - started < 1.5
        finally:
            await close_redis_client(store.client)


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1/0", "redis://:hunter2@host:port/0"])
def test_malformed_url_is_rejected_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="invalid REDIS_URL") as caught:
        create_redis_client(url, cluster=False, socket_timeout=1.0)
    assert "hunter2" not in str(caught.value)


def test_cluster_over_a_unix_socket_is_rejected() -> None:
    with pytest.raises(ValueError, match="unix"):
        create_redis_client("unix:///tmp/redis.sock", cluster=True, socket_timeout=1.0)


@pytest.fixture(scope="module")
def secured_server(workdir: Path) -> Iterator[LocalRedisServer]:
    """A private Redis requiring a password and also listening on a unix socket."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (CI provides it)")
    sock = workdir / "redis.sock"
    server = LocalRedisServer(
        workdir,
        None,
        "--requirepass",
        "s3cret",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("transport", ["tcp", "unix"])
async def test_password_and_db_index_come_from_the_url(
    secured_server: LocalRedisServer, workdir: Path, transport: str
) -> None:
    if transport == "tcp":
        url = f"redis://:s3cret@{HOST}:{secured_server.port}/3"
    else:
        url = f"unix://:s3cret@{workdir / 'redis.sock'}?db=3"
    store = open_store(url, "url-test:")
    inspector = Redis(host=HOST, port=secured_server.port, password="s3cret", db=3)
    try:
        await store.append_turn(transport, *turn(0))
        assert await inspector.exists(f"url-test:session:{transport}") == 1
        assert await store.load(transport) == [*turn(0)]
    finally:
        await inspector.delete(f"url-test:session:{transport}")
        await inspector.aclose()
        await close_redis_client(store.client)


async def test_wrong_password_is_unavailable_and_not_echoed(
    secured_server: LocalRedisServer,
) -> None:
    store = open_store(f"redis://:wrong-pass@{HOST}:{secured_server.port}/0", "x:")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.check()
        assert "wrong-pass" not in str(caught.value)
    finally:
        await close_redis_client(store.client)


@needs_redis_server
async def test_outage_fails_fast_and_the_same_store_recovers(workdir: Path) -> None:
    server = LocalRedisServer(workdir)
    await asyncio.to_thread(server.start)
    store = open_store(server.url, "outage:", socket_timeout=1.0)
    try:
        await store.append_turn("s1", *turn(0))
        assert await store.load("s1") == [*turn(0)]

        await asyncio.to_thread(server.stop)
        for operation in operations_of(store):
            started = time.perf_counter()
            with pytest.raises(StoreUnavailable):
                await operation()
            assert time.perf_counter() - started < 2.0

        await asyncio.to_thread(server.start)  # same port, empty dataset
        await store.check()
        await store.append_turn("s1", *turn(2))
        assert await store.load("s1") == [*turn(2)]
    finally:
        await close_redis_client(store.client)
        await asyncio.to_thread(server.stop)


@needs_redis_server
async def test_quick_restart_is_invisible_to_callers(workdir: Path) -> None:
    """Pooled connections go stale when Redis restarts; the next calls must reconnect silently."""
    server = LocalRedisServer(workdir)
    await asyncio.to_thread(server.start)
    store = open_store(server.url, "restart:", max_messages=100)
    try:
        # Open several pooled connections, all of which the restart will break.
        await asyncio.gather(*(store.append_turn(f"s{i}", *turn(i)) for i in range(10)))

        await asyncio.to_thread(server.restart)

        await asyncio.gather(*(store.append_turn(f"s{i}", *turn(i)) for i in range(10)))
        loaded = await asyncio.gather(*(store.load(f"s{i}") for i in range(10)))
        assert loaded == [[*turn(i)] for i in range(10)]  # the restart emptied Redis
    finally:
        await close_redis_client(store.client)
        await asyncio.to_thread(server.stop)


def test_role_values_are_stable_on_the_wire() -> None:
    # Stored data outlives deployments: renaming an enum value would orphan every history.
    assert [role.value for role in Role] == ["system", "user", "assistant", "tool"]
