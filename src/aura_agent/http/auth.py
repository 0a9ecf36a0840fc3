"""Caller authentication by the `x-api-key` header, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

API_KEY_HEADER = "x-api-key"
_log = structlog.get_logger("aura_agent.auth")


class ApiKeyGuard:
    """A Litestar guard holding the accepted key as bytes, so each check is one digest compare."""

    def __init__(self, api_key: str) -> None:
        self._expected = api_key.encode()

    def is_valid(self, presented: str | None) -> bool:
        """True when `presented` equals the configured key; timing does not depend on the match."""
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self._expected)

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        presented = connection.headers.get(API_KEY_HEADER)
        if not self.is_valid(presented):
            reason = "missing" if presented is None else "wrong"
            _log.warning("auth_failed", reason=reason, path=connection.url.path)
            raise NotAuthorizedException(
                detail="missing x-api-key header"
                if presented is None
                else "the x-api-key header does not match a known key"
            )
