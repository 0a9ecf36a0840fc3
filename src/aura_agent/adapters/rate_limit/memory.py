"""Per-tenant limits inside one process: for the memory session store and single instances."""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class MemoryRateLimiter:
    """`RateLimiter` in a dict per tenant; tenants are the configured keys, so it stays small.

    Requests per minute use GCRA (a leaky bucket kept as one "theoretical arrival time" per
    tenant): a burst of up to `requests_per_minute`, then one more every 60/N s. It needs O(1)
    memory, has no window edges that let a double burst through, and knows exactly when the
    next request would pass, which becomes `Retry-After`. Methods never await, so each one runs
    atomically on the event loop.
    """

    def __init__(
        self,
        *,
        requests_per_minute: int,
        max_streams: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute < 0 or max_streams < 0:
            raise ValueError("limits must be 0 (off) or positive")
        self._interval = WINDOW_SECONDS / requests_per_minute if requests_per_minute else 0.0
        self._max_streams = max_streams
        self._clock = clock
        self._arrival: dict[str, float] = {}
        self._streams: dict[str, set[str]] = {}

    async def hit(self, tenant: str) -> float:
        """Admit one request (0.0), or return the seconds until one would be admitted."""
        if not self._interval:
            return 0.0
        now = self._clock()
        arrival = max(self._arrival.get(tenant, now), now) + self._interval
        wait = arrival - now - WINDOW_SECONDS
        if wait > 0:
            return wait
        self._arrival[tenant] = arrival
        return 0.0

    async def acquire_stream(self, tenant: str, stream_id: str) -> bool:
        """Take a stream slot unless the tenant already holds `max_streams`."""
        if not self._max_streams:
            return True
        held = self._streams.setdefault(tenant, set())
        if len(held) >= self._max_streams:
            return False
        held.add(stream_id)
        return True

    async def release_stream(self, tenant: str, stream_id: str) -> None:
        """Give the slot back (idempotent)."""
        held = self._streams.get(tenant)
        if held is not None:
            held.discard(stream_id)
            if not held:
                del self._streams[tenant]
