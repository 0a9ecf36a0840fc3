"""Admission control: per-tenant request rate and concurrent streams, and the instance's cap.

Refusals are problem details before anything streams: 429 for a tenant over its own limits,
503 when this instance is full or shutting down, both with `Retry-After`. A stream holds its
slots from admission until its response is over (`ActiveStream.close`), however it ends.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from aura_agent.domain.ports import RateLimiter
from aura_agent.http.auth import AsyncGuard, tenant_of
from aura_agent.http.problems import Problem, RequestProblem, problem_response
from aura_agent.http.record import RequestRecord
from aura_agent.http.sse.control import SHUTDOWN_MESSAGE, ActiveStream, StreamRegistry

_log = structlog.get_logger("aura_agent.limits")
_STREAM_RETRY_AFTER = 1.0


class LimitProblem(RequestProblem):
    """A request refused by a limit; says when to retry in `Retry-After` (whole seconds)."""

    def __init__(self, detail: str, *, status_code: int, retry_after: float) -> None:
        super().__init__(detail, status_code=status_code)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


def limit_problem_response(request: Request[Any, Any, Any], exc: LimitProblem) -> Response[Problem]:
    """The exception handler of `LimitProblem`: its own detail even for a 503 (the generic
    handler hides 5xx details, which are internal failures; a full instance is not)."""
    return problem_response(request, exc.status_code, exc.detail, headers=exc.headers)


class Limits:
    """The limits of one app: `guard` on every keyed route, `open_stream` before each stream."""

    def __init__(
        self,
        *,
        registry: StreamRegistry,
        rate_limiter: Callable[[], Awaitable[RateLimiter]],
        requests_per_minute: int,
        streams_per_key: int,
    ) -> None:
        self.registry = registry
        self._rate_limiter = rate_limiter
        self._requests_per_minute = requests_per_minute
        self._streams_per_key = streams_per_key

    @property
    def guards(self) -> tuple[AsyncGuard, ...]:
        """The guards for keyed routes, after the key guard: none without a rate limit."""
        return (self.guard,) if self._requests_per_minute else ()

    async def guard(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """A Litestar guard after the key guard: count the request against its tenant's rate."""
        if not self._requests_per_minute:
            return
        tenant = tenant_of(connection.scope)
        wait = await (await self._rate_limiter()).hit(tenant)
        if wait > 0:
            _log.warning("rate_limited", tenant=tenant, path=connection.url.path)
            problem = LimitProblem(
                f"this key may send {self._requests_per_minute} requests per minute",
                status_code=429,
                retry_after=wait,
            )
            problem.detail += f"; retry after {problem.retry_after} s"
            raise problem

    async def open_stream(self, tenant: str, record: RequestRecord) -> ActiveStream:
        """Admit a stream: the instance cap (503) first, it costs nothing; then the tenant's
        concurrent streams (429). The caller must `close()` the stream if it never starts."""
        stream = self.registry.open(record)
        if stream is None:
            if self.registry.closing:
                raise LimitProblem(SHUTDOWN_MESSAGE, status_code=503, retry_after=1)
            _log.warning("stream_cap_reached", max_streams=self.registry.max_streams)
            raise LimitProblem(
                f"this instance is serving its maximum of {self.registry.max_streams} streams; "
                "retry shortly",
                status_code=503,
                retry_after=_STREAM_RETRY_AFTER,
            )
        if not self._streams_per_key:
            return stream
        stream_id = uuid.uuid4().hex  # never the request id: a client chooses that one
        try:
            limiter = await self._rate_limiter()
            taken = await limiter.acquire_stream(tenant, stream_id)
        except BaseException:
            await stream.close()
            raise
        if not taken:
            await stream.close()
            _log.warning("stream_limit_reached", tenant=tenant)
            raise LimitProblem(
                f"this key already has its maximum of {self._streams_per_key} streams open; "
                "retry when one ends",
                status_code=429,
                retry_after=_STREAM_RETRY_AFTER,
            )
        stream.on_close(partial(limiter.release_stream, tenant, stream_id))
        return stream
