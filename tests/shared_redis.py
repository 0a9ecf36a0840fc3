"""The Redis several app instances share in tests, and cleanup of one test's key prefix.

The Redis on 127.0.0.1:6379 is used when it answers (CI starts one); otherwise a private
redis-server is started, and the test is skipped when neither is possible.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.redis_helpers import (
    DEFAULT_PORT,
    HOST,
    LocalRedisServer,
    is_redis_listening,
    redis_server_binary,
)


@contextlib.contextmanager
def shared_redis_url(workdir: Path) -> Iterator[str]:
    """Yield the URL of a Redis to share; stops it afterwards if it was started here."""
    if is_redis_listening(DEFAULT_PORT):
        yield f"redis://{HOST}:{DEFAULT_PORT}/0"
        return
    if redis_server_binary() is None:
        pytest.skip("no Redis answers on 127.0.0.1:6379 and redis-server is not installed")
    server = LocalRedisServer(workdir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def unique_prefix() -> str:
    """A key prefix no other test (or deployment sharing the Redis) uses."""
    return f"aura-test:{uuid.uuid4().hex}:"


async def keys_under(url: str, prefix: str) -> list[bytes]:
    """Every key under `prefix`, sorted."""
    client = Redis.from_url(url)
    try:
        return sorted([key async for key in client.scan_iter(match=f"{prefix}*", count=1000)])
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    """Remove every key a test wrote under `prefix`."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
