"""A session store on Redis (standalone or Cluster), shared by every replica of the service.

Each session is one Redis list of msgpack-encoded messages at `{key_prefix}session:{id}`. Every
operation touches exactly one key, so it routes to one node on Redis Cluster and needs no hash
tags. Writes and TTL refreshes run as small Lua scripts: one round trip, atomic on the server,
and identical on standalone Redis and Cluster (redis-py's cluster MULTI/EXEC pipeline queues
each command through a helper thread and a second event loop, which we avoid).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import msgspec
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aura_agent.domain.errors import SessionStoreError, SessionStoreUnavailable
from aura_agent.domain.models import Message

RedisClient = Redis | RedisCluster

UNAVAILABLE_MESSAGE: Final = "the session store is unavailable; try again shortly"
FAILED_MESSAGE: Final = "the session store failed to process the request"
CORRUPT_MESSAGE: Final = "the stored conversation could not be read"

# Errors that mean "Redis cannot serve us right now" (down, unreachable, failing over,
# resharding, loading its dataset), as opposed to a bug such as a WRONGTYPE reply.
_UNAVAILABLE_ERRORS: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
    OSError,
)

_CLIENT_NAME: Final = "aura-agent"
_HEALTH_CHECK_INTERVAL: Final = 10  # seconds a pooled connection may idle before a PING

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Message)

# KEYS[1] history; ARGV: user, assistant, messages to keep, ttl seconds.
_APPEND_TURN: Final = """
redis.call('RPUSH', KEYS[1], ARGV[1], ARGV[2])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS[1] history; ARGV[1] ttl seconds. Reading counts as activity, as in the memory store.
_LOAD: Final = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return items
"""


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Translate redis-py errors into domain errors whose text is safe to show to end users."""
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise SessionStoreUnavailable(UNAVAILABLE_MESSAGE) from exc
    except RedisError as exc:
        raise SessionStoreError(FAILED_MESSAGE) from exc


class RedisSessionStore:
    """`SessionStore` on Redis: one list per session, trimmed to whole turns, expiring when idle.

    History is capped at `max_messages` rounded down to an even count (whole turns), and a
    session expires `ttl_seconds` after it was last written or loaded. Failures surface as
    `SessionStoreUnavailable` (transient) or `SessionStoreError`; their messages never include
    the URL.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        key_prefix: str,
        max_messages: int,
        ttl_seconds: int,
    ) -> None:
        if max_messages < 2:
            raise ValueError("max_messages must be at least 2 (one user/assistant turn)")
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self._client = client
        self._key_prefix = key_prefix
        self._keep = max_messages - max_messages % 2
        self._ttl = ttl_seconds
        # Scripts run by SHA; redis-py reloads them itself after a restart empties the cache.
        self._append_turn = client.register_script(_APPEND_TURN)
        self._load = client.register_script(_LOAD)

    @property
    def client(self) -> RedisClient:
        """The client this store uses; its owner closes it with `close_redis_client`."""
        return self._client

    def key_for(self, session_id: str) -> str:
        """The Redis key of a session (ids are pre-validated to `[A-Za-z0-9_-]{1,128}`)."""
        return f"{self._key_prefix}session:{session_id}"

    async def load(self, session_id: str) -> list[Message]:
        """Return the history, oldest first, and push its expiry back by `ttl_seconds`."""
        with _domain_errors():
            raw = await self._load(keys=[self.key_for(session_id)], args=[self._ttl])
        try:
            return [_decoder.decode(item) for item in raw]
        except (msgspec.DecodeError, TypeError) as exc:
            raise SessionStoreError(CORRUPT_MESSAGE) from exc

    async def append_turn(self, session_id: str, user: Message, assistant: Message) -> None:
        """Append both messages, trim and refresh the expiry in one atomic round trip.

        If the connection drops after Redis ran the script but before its reply arrived, the
        retry may store the turn twice; that needs a network fault at that exact moment, and a
        repeated turn is better than a lost one.
        """
        args = (_encoder.encode(user), _encoder.encode(assistant), self._keep, self._ttl)
        with _domain_errors():
            await self._append_turn(keys=[self.key_for(session_id)], args=args)

    async def delete(self, session_id: str) -> bool:
        """Forget a session; True if it existed."""
        with _domain_errors():
            removed = await self._client.delete(self.key_for(session_id))
        return bool(removed)

    async def check(self) -> None:
        """PING Redis; on a cluster every primary, since one missing primary already loses the
        sessions in its slots (a plain cluster PING asks one random primary)."""
        with _domain_errors():
            if isinstance(self._client, RedisCluster):
                await self._client.ping(target_nodes=RedisCluster.PRIMARIES)
            else:
                await self._client.ping()


def _retry_policy() -> Retry:
    """One quick retry on a dropped connection: enough to replace a connection a restarted Redis
    has closed, not enough to keep a request hanging while Redis is really down."""
    return Retry(
        ExponentialWithJitterBackoff(base=0.02, cap=0.2),
        1,
        supported_errors=(RedisConnectionError,),
    )


def create_redis_client(url: str, *, cluster: bool, socket_timeout: float) -> RedisClient:
    """Build a client from `redis://`, `rediss://` or `unix://` URLs (password, db from the URL).

    Connections are made lazily, so this succeeds while Redis is down, and the same client
    reconnects by itself once Redis is back. Connect and read timeouts are both
    `socket_timeout`. Only dropped connections are retried, once and quickly: that replaces a
    pooled connection a restarted Redis has closed, while a Redis that is really down fails the
    request at once. Timeouts are not retried on standalone Redis (a slow Redis would hold the
    request longer, and a timed-out write may already have been applied); the cluster client
    retries them anyway, once, so a request waits at most about 2 x `socket_timeout` there.
    Idle pooled connections are PINGed before reuse, so a restart is noticed before a write.
    Raises `ValueError` for a malformed URL, without repeating the URL (it may hold a password).
    """
    try:
        if not cluster:
            return Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                health_check_interval=_HEALTH_CHECK_INTERVAL,
                retry=_retry_policy(),
                decode_responses=False,
                client_name=_CLIENT_NAME,
            )
        if url.startswith("unix://"):
            raise ValueError("Redis Cluster cannot be reached through a unix:// socket")
        # The cluster client retries whole commands itself, refreshing its slot map in between
        # (it uses only the retry count); node connections get no retry of their own.
        return RedisCluster.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=_HEALTH_CHECK_INTERVAL,
            retry=_retry_policy(),
            decode_responses=False,
            client_name=_CLIENT_NAME,
        )
    except (ValueError, RedisError, RedisClusterException) as exc:
        raise ValueError(f"invalid REDIS_URL: {exc}") from None


async def close_redis_client(client: RedisClient) -> None:
    """Close the client and its connection pool(s); call once at shutdown."""
    await client.aclose()
