"""The app's one upstream `httpx.AsyncClient`, from plain numbers (the container reads settings).

Shared by every tenant and every route for the app's lifetime, and closed by its owner.
"""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Literal

import httpx

from aura_agent.adapters.http_client.transport import AsyncioTransport

__all__ = ["TransportName", "build_client"]

TransportName = Literal["httpx", "asyncio"]
"""What moves the bytes: httpx's own transport (httpcore) or `AsyncioTransport`."""


def build_client(
    *,
    transport: TransportName,
    connect_timeout: float,
    idle_timeout: float,
    max_connections: int = 1000,
    max_keepalive_connections: int = 100,
    keepalive_expiry: float = 30.0,
) -> httpx.AsyncClient:
    """One pooled client; its read timeout is the idle time allowed between two chunks.

    `max_connections` caps the connections open at once to all providers together: each SSE
    stream holds one for its whole duration. Connect, write and pool waits share one timeout.
    """
    timeout = httpx.Timeout(
        connect=connect_timeout,
        read=idle_timeout,
        write=connect_timeout,
        pool=connect_timeout,
    )
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive_connections,
        keepalive_expiry=keepalive_expiry,
    )
    # None: httpx builds its own from `limits` (and honours HTTP(S)_PROXY and mounts)
    chosen = AsyncioTransport(limits=limits) if transport == "asyncio" else None
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        transport=chosen,
        # a provider's 3xx is returned as is, as `UpstreamEndpoint` (which skips the redirect
        # loop) returns it anyway
        follow_redirects=False,
        # Provider cookies (a CDN's bot-management cookie, say) must not ride from one caller's
        # request to the next: the client is shared by every tenant.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
