"""RedisSessionStore on a real three-node Redis Cluster started just for this module."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aura_agent.adapters.session_store.redis import (
    RedisSessionStore,
    close_redis_client,
    create_redis_client,
)
from aura_agent.domain.errors import StoreUnavailable
from tests.redis_helpers import (
    LocalRedisCluster,
    command,
    redis_cli_binary,
    redis_server_binary,
)
from tests.session_store_contract import SessionStoreContract, turn

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None or redis_cli_binary() is None,
    reason="redis-server and redis-cli are needed to start a local cluster (CI provides them)",
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    """Start the cluster once for the module; kill it and remove its files afterwards."""
    with tempfile.TemporaryDirectory(prefix="aura-redis-cluster-") as workdir:
        local = LocalRedisCluster(Path(workdir))
        local.start()
        try:
            yield local
        finally:
            local.stop()


@pytest.fixture
async def cluster_store(cluster: LocalRedisCluster) -> AsyncIterator[RedisSessionStore]:
    client = create_redis_client(cluster.url, cluster=True, socket_timeout=2.0)
    store = RedisSessionStore(
        client,
        key_prefix=f"aura-test:{uuid.uuid4().hex}:",
        max_messages=SessionStoreContract.MAX_MESSAGES,
        ttl_seconds=3_600,
    )
    try:
        yield store
    finally:
        await close_redis_client(client)


class TestRedisClusterSessionStoreContract(SessionStoreContract):
    @pytest.fixture
    async def store(self, cluster_store: RedisSessionStore) -> RedisSessionStore:
        return cluster_store


async def test_sessions_spread_over_the_nodes(
    cluster: LocalRedisCluster, cluster_store: RedisSessionStore
) -> None:
    for index in range(30):
        await cluster_store.append_turn(f"session-{index}", *turn(index))

    sizes = [command(server.port, "DBSIZE") for server in cluster.servers]
    nodes_with_keys = [size for size in sizes if size not in (None, b":0\r\n")]
    assert len(nodes_with_keys) >= 2, sizes
    for index in range(30):
        assert await cluster_store.load(f"session-{index}") == [*turn(index)]


async def test_a_lost_primary_is_reported_and_recovered_from(
    cluster: LocalRedisCluster, cluster_store: RedisSessionStore
) -> None:
    """Kill one primary: check() and the sessions it holds fail fast, the others keep working;
    once it is back (same port, same nodes.conf) the same store serves everything again."""
    sessions = [f"session-{index}" for index in range(30)]
    for session in sessions:
        await cluster_store.append_turn(session, *turn(0))
    victim = cluster.servers[1]

    await asyncio.to_thread(victim.stop)
    try:
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable):
            await cluster_store.check()
        outcomes: dict[str, int] = {"ok": 0, "unavailable": 0}
        for session in sessions:
            try:
                await cluster_store.load(session)
                outcomes["ok"] += 1
            except StoreUnavailable:
                outcomes["unavailable"] += 1
        assert outcomes["ok"] > 0
        assert outcomes["unavailable"] > 0
        assert time.perf_counter() - started < 5.0
    finally:
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(cluster.wait_until_ok, 20.0)

    deadline = time.monotonic() + 10.0
    while True:  # the client refreshes its slot map on the next errors
        try:
            await cluster_store.check()
            for session in sessions:
                await cluster_store.append_turn(session, *turn(1))
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
