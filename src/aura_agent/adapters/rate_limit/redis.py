"""Per-tenant limits in Redis, so every instance of a deployment enforces the same ones.

Each check is one Lua script on one key (one round trip, atomic on the server, fine on Redis
Cluster), timed by the Redis server's clock so instances with skewed clocks still agree:

* `{prefix}ratelimit:{tenant}`: GCRA, as in the memory adapter: one number, the tenant's
  "theoretical arrival time", expiring when it is in the past;
* `{prefix}streams:{tenant}`: a sorted set of the tenant's open streams, scored by when their
  lease runs out. A stream is removed when it ends; if its instance dies first, the lease runs
  out by itself (a lease outlasts the longest stream UPSTREAM_TOTAL_TIMEOUT allows), so a crash
  can never lock a tenant out for good.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import structlog
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aura_agent.domain.errors import LimiterError, LimiterUnavailable

_log = structlog.get_logger("aura_agent.rate_limit")

UNAVAILABLE_MESSAGE: Final = "the rate limiter's store is unavailable; try again shortly"
FAILED_MESSAGE: Final = "the rate limiter's store failed to process the request"
WINDOW_MS: Final = 60_000

# KEYS[1] arrival time (ms); ARGV[1] ms per request, ARGV[2] window ms.
# Returns 0 when admitted, else the ms until a request would be.
_HIT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local arrival = tonumber(redis.call('GET', KEYS[1])) or now
if arrival < now then arrival = now end
arrival = arrival + tonumber(ARGV[1])
local wait = arrival - now - tonumber(ARGV[2])
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', arrival), 'PX', math.ceil(arrival - now))
return 0
"""

# KEYS[1] open streams; ARGV[1] stream id, ARGV[2] limit, ARGV[3] lease ms. Returns 1 or 0.
_ACQUIRE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_UNAVAILABLE_ERRORS: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,
    OSError,
)


@contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE_ERRORS as exc:
        raise LimiterUnavailable(UNAVAILABLE_MESSAGE) from exc
    except RedisError as exc:
        raise LimiterError(FAILED_MESSAGE) from exc


class RedisRateLimiter:
    """`RateLimiter` on Redis (standalone or Cluster); shares the session store's client."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        key_prefix: str,
        requests_per_minute: int,
        max_streams: int,
        lease_seconds: float,
    ) -> None:
        if requests_per_minute < 0 or max_streams < 0:
            raise ValueError("limits must be 0 (off) or positive")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._client = client
        self._prefix = key_prefix
        self._interval_ms = WINDOW_MS / requests_per_minute if requests_per_minute else 0.0
        self._max_streams = max_streams
        self._lease_ms = int(lease_seconds * 1000)
        self._hit = client.register_script(_HIT)
        self._acquire = client.register_script(_ACQUIRE)

    def rate_key(self, tenant: str) -> str:
        """The key of a tenant's request rate (tenant names are `[A-Za-z0-9_-]{1,64}`)."""
        return f"{self._prefix}ratelimit:{tenant}"

    def streams_key(self, tenant: str) -> str:
        """The key of a tenant's open streams."""
        return f"{self._prefix}streams:{tenant}"

    async def hit(self, tenant: str) -> float:
        """Admit one request (0.0), or return the seconds until one would be admitted."""
        if not self._interval_ms:
            return 0.0
        with _domain_errors():
            wait_ms = await self._hit(
                keys=[self.rate_key(tenant)], args=[repr(self._interval_ms), WINDOW_MS]
            )
        return int(wait_ms) / 1000

    async def acquire_stream(self, tenant: str, stream_id: str) -> bool:
        """Take a stream slot unless the tenant already holds `max_streams` live leases."""
        if not self._max_streams:
            return True
        with _domain_errors():
            taken = await self._acquire(
                keys=[self.streams_key(tenant)],
                args=[stream_id, self._max_streams, self._lease_ms],
            )
        return bool(taken)

    async def release_stream(self, tenant: str, stream_id: str) -> None:
        """Give the slot back; if Redis cannot be reached, its lease runs out by itself."""
        if not self._max_streams:
            return
        try:
            await self._client.zrem(self.streams_key(tenant), stream_id)
        except (RedisError, RedisClusterException, OSError) as exc:
            _log.warning("stream_slot_not_released", tenant=tenant, error=type(exc).__name__)
