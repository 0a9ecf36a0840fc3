"""Caller authentication by the `x-api-key` header, compared in constant time against every key.

The matched key's tenant goes on the request (scope and canonical log line); a failure is
logged with its reason, path and client address, never with the key that was presented.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from aura_agent.api_keys import ApiKeyTable, load_api_keys
from aura_agent.http.request_context import get_record
from aura_agent.http.tenancy import TENANT_SCOPE_KEY

API_KEY_HEADER = "x-api-key"
_log = structlog.get_logger("aura_agent.auth")


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
        if "aura.record" in connection.scope:
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
