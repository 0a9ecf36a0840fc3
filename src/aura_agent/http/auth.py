"""Who is calling: key guards, the tenant a key belongs to, and the session ids it may reach.

Keys are compared in constant time against every configured key (`aura_agent.api_keys`); the
matched key's tenant goes on the request scope and the canonical log line. A failure is logged
with its reason, path and client address, never with the key that was presented. The seed's
`/chat` clients send `x-api-key`; OpenAI SDKs and Prometheus send `Authorization: Bearer`.

Controllers hand stores only *scoped* session ids, so a tenant can never read, continue or
delete another tenant's conversation, whatever id it sends, in every store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Scope

from aura_agent.api_keys import DEFAULT_TENANT, ApiKeyTable, load_api_keys
from aura_agent.http.record import RECORD_SCOPE_KEY, get_record

__all__ = [
    "API_KEY_HEADER",
    "TENANT_SCOPE_KEY",
    "ApiKeyGuard",
    "AsyncGuard",
    "BearerOrApiKeyGuard",
    "all_of",
    "presented_key",
    "provide_tenant",
    "scoped_session_id",
    "tenant_of",
]

API_KEY_HEADER: Final = "x-api-key"
TENANT_SCOPE_KEY: Final = "aura.tenant"
_BEARER: Final = "bearer "
_log = structlog.get_logger("aura_agent.auth")

AsyncGuard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
"""A guard that is a coroutine function (Litestar runs a sync guard in a worker thread)."""


class ApiKeyGuard:
    """A Litestar guard over the configured keys (a table, or the seed's one key as a string)."""

    def __init__(self, keys: ApiKeyTable | str) -> None:
        if isinstance(keys, str):
            keys = load_api_keys(internal_api_key=keys, internal_api_keys=None, api_keys_file=None)
        self._keys = keys

    def is_valid(self, presented: str | None) -> bool:
        """True when `presented` is one of the keys; timing does not depend on the match."""
        return presented is not None and self._keys.tenant_for(presented) is not None

    def authenticate(
        self, connection: ASGIConnection[Any, Any, Any, Any], presented: str | None
    ) -> str | None:
        """The tenant of `presented`, now recorded on the request; None (logged) on failure."""
        tenant = None if presented is None else self._keys.tenant_for(presented)
        if tenant is None:
            client = connection.client
            _log.warning(
                "auth_failed",
                reason="missing" if presented is None else "wrong",
                path=connection.url.path,
                client_ip=client.host if client else None,
            )
            return None
        connection.scope[TENANT_SCOPE_KEY] = tenant  # type: ignore[typeddict-unknown-key]
        if RECORD_SCOPE_KEY in connection.scope:
            get_record(connection.scope).tenant = tenant
        return tenant

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        """Async although it never awaits: Litestar runs a sync guard in a worker thread."""
        presented = connection.headers.get(API_KEY_HEADER)
        if self.authenticate(connection, presented) is None:
            raise NotAuthorizedException(
                detail="missing x-api-key header"
                if presented is None
                else "the x-api-key header does not match a known key"
            )


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The key a caller sent: the bearer token, else `x-api-key`; None when neither is there."""
    authorization = connection.headers.get("authorization")
    if authorization is not None and authorization[: len(_BEARER)].lower() == _BEARER:
        return authorization[len(_BEARER) :].strip()
    return connection.headers.get(API_KEY_HEADER)


class BearerOrApiKeyGuard:
    """A Litestar guard: `Authorization: Bearer <key>` or `x-api-key: <key>`, checked by `keys`
    (so which keys are valid, and whose they are, is decided in one place)."""

    def __init__(self, keys: ApiKeyGuard) -> None:
        self._keys = keys

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        presented = presented_key(connection)
        # `authenticate` logs a failure, and on success puts the key's tenant on the request.
        if self._keys.authenticate(connection, presented) is None:
            raise NotAuthorizedException(
                detail="missing API key: send Authorization: Bearer <key> or x-api-key"
                if presented is None
                else "the API key does not match a known key"
            )


def all_of(*guards: AsyncGuard) -> AsyncGuard:
    """One guard that runs `guards` in order; the first refusal wins.

    Litestar passes each guard its own shallow copy of the route handler, on every request
    (about 20 µs each here); the keyed routes have two or three guards, so running them as one
    is a measurable part of the latency a request adds.
    """
    if len(guards) == 1:
        return guards[0]

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        for each in guards:
            await each(connection, handler)

    return guard


def tenant_of(scope: Scope) -> str:
    """The tenant the key guard authenticated; fails closed on a route outside the guard."""
    tenant = scope.get(TENANT_SCOPE_KEY)
    if not isinstance(tenant, str):
        raise RuntimeError("no tenant on the request: the route is not behind the key guard")
    return tenant


def provide_tenant(request: Request[Any, Any, Any]) -> str:
    """Litestar dependency `tenant`."""
    return tenant_of(request.scope)


def scoped_session_id(tenant: str, session_id: str) -> str:
    """The id a store keeps `session_id` of `tenant` under.

    `<tenant>/<id>`; the `default` tenant (the seed's single key) keeps the bare id, so the
    conversations of a single-key deployment survive the upgrade. Ids never contain `/`, so
    the namespaces cannot overlap.
    """
    return session_id if tenant == DEFAULT_TENANT else f"{tenant}/{session_id}"
