"""Request ids and the canonical log line: one line per request, written when the response ends.

A pure ASGI middleware, so that a streamed response is logged after its last byte with what the
stream recorded (time to first token, tokens relayed, outcome) rather than when headers went out.
"""

from __future__ import annotations

import re
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from aura_agent.http.record import (
    CLIENT_CLOSED_REQUEST,
    RECORD_SCOPE_KEY,
    REQUEST_ID_SCOPE_KEY,
    RequestRecord,
)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/health", "/ready"})
_log = structlog.get_logger("aura_agent.access")


def _request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):  # `$` alone would let "id\n" through
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Assigns the request id, returns it as `X-Request-Id`, and logs the canonical line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        record = RequestRecord(request_id, scope["method"], scope["path"])
        scope[RECORD_SCOPE_KEY] = record  # type: ignore[typeddict-unknown-key]
        scope[REQUEST_ID_SCOPE_KEY] = request_id  # type: ignore[typeddict-unknown-key]
        header = (b"x-request-id", request_id.encode())

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            self._log(record)

    @staticmethod
    def _log(record: RequestRecord) -> None:
        fields = record.as_log_fields()
        status = record.final_status()
        if status >= 500 or (record.outcome or "").startswith("error"):
            _log.error("request", **fields)
        elif status >= 400 and status != CLIENT_CLOSED_REQUEST:  # a client leaving is routine
            _log.warning("request", **fields)
        elif record.path in _QUIET_PATHS:
            _log.debug("request", **fields)
        else:
            _log.info("request", **fields)
