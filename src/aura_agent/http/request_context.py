"""Request ids and the canonical log line: one line per request, written when the response ends.

A pure ASGI middleware, so that a streamed response is logged after its last byte with what the
stream recorded (time to first token, tokens relayed, outcome) rather than when headers went out.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from aura_agent.domain.models import Usage

REQUEST_ID_HEADER = "x-request-id"
CLIENT_CLOSED_REQUEST = 499
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/health", "/ready"})
_log = structlog.get_logger("aura_agent.access")


class RequestRecord:
    """What the canonical log line reports; filled in by the handler and the stream as they go."""

    __slots__ = (
        "attempts",
        "cached_tokens",
        "completion_tokens",
        "error",
        "error_provider",
        "include_usage",
        "method",
        "model",
        "outcome",
        "path",
        "prompt_tokens",
        "provider",
        "reasoning_tokens",
        "request_id",
        "requested_route",
        "route",
        "session_id",
        "started",
        "status",
        "tenant",
        "tokens_relayed",
        "ttft_ms",
        "usage",
    )

    def __init__(self, request_id: str, method: str, path: str) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.started = time.perf_counter()
        self.status: int | None = None
        self.tenant: str | None = None
        self.session_id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.route: str | None = None
        self.attempts: int | None = None
        self.ttft_ms: float | None = None
        self.tokens_relayed = 0
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.usage: Usage | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        # Not logged: the route a request asked for (metrics count a fallback when `route`, the
        # one that served, differs), the provider of an upstream failure, and whether /chat
        # sends the usage event.
        self.requested_route: str | None = None
        self.error_provider: str | None = None
        self.include_usage = False

    def note_usage(self, usage: Usage) -> None:
        """Keep the usage the provider reported, for the log line, metrics and the client."""
        self.usage = usage
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.reasoning_tokens = usage.reasoning_tokens
        self.cached_tokens = usage.cached_tokens

    def final_status(self) -> int:
        """The status sent; for a response never started, 499 if the client left first (the
        nginx convention: not a server failure), else 500."""
        if self.status is not None:
            return self.status
        return CLIENT_CLOSED_REQUEST if self.outcome == "client_disconnected" else 500

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived."""
        return round((time.perf_counter() - self.started) * 1000, 2)

    def as_log_fields(self) -> dict[str, Any]:
        """The non-empty fields, in a stable order."""
        fields: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.final_status(),
            "duration_ms": self.elapsed_ms(),
        }
        for name in (
            "tenant",
            "session_id",
            "route",
            "provider",
            "model",
            "attempts",
            "ttft_ms",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "cached_tokens",
            "outcome",
            "error",
        ):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        if self.outcome is not None:
            fields["tokens_relayed"] = self.tokens_relayed
        return fields


def get_record(scope: Scope) -> RequestRecord:
    """The record of the current request (set by the middleware)."""
    record: RequestRecord = scope["aura.record"]  # type: ignore[typeddict-item]
    return record


def request_id_of(scope: Scope) -> str | None:
    """The id the middleware gave the current request, if it ran."""
    request_id = scope.get("aura.request_id")
    return request_id if isinstance(request_id, str) else None


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
        scope["aura.record"] = record  # type: ignore[typeddict-unknown-key]
        scope["aura.request_id"] = request_id  # type: ignore[typeddict-unknown-key]
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
