"""A key guard that also accepts `Authorization: Bearer <key>`, for OpenAI SDKs and scrapers.

The OpenAI SDKs and Prometheus send their key as a bearer token; the seed's `/chat` clients send
`x-api-key`. Which keys are valid (constant-time compare) and which tenant a key belongs to stay
`ApiKeyGuard`'s business, so there is one place that decides.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from aura_agent.http.auth import API_KEY_HEADER, ApiKeyGuard

_BEARER = "bearer "


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The key a caller sent: the bearer token, else `x-api-key`; None when neither is there."""
    authorization = connection.headers.get("authorization")
    if authorization is not None and authorization[: len(_BEARER)].lower() == _BEARER:
        return authorization[len(_BEARER) :].strip()
    return connection.headers.get(API_KEY_HEADER)


class BearerOrApiKeyGuard:
    """A Litestar guard: `Authorization: Bearer <key>` or `x-api-key: <key>`, checked by `keys`."""

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
