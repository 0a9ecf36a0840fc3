"""What one request did, as the canonical log line and the metrics report it.

The record learns from the domain's events in one place (`note_token`, `note`, `note_failure`,
`note_cut`), so each API's stream only encodes. Per token it costs one method call and an add;
everything else happens once per request.
"""

from __future__ import annotations

import time
from typing import Any, Final

from litestar.types import Scope

from aura_agent.domain.errors import AuraError, ChatModelError
from aura_agent.domain.models import ChatEvent, RouteServed, StreamEnd, Usage

CLIENT_CLOSED_REQUEST: Final = 499
RECORD_SCOPE_KEY: Final = "aura.record"
REQUEST_ID_SCOPE_KEY: Final = "aura.request_id"


class RequestRecord:
    """What the canonical log line reports; filled in by the handler and the stream as they go."""

    __slots__ = (
        "attempts",
        "cached_tokens",
        "completion_tokens",
        "error",
        "error_provider",
        "finish_reason",
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
        self.finish_reason = "stop"
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

    def note_token(self) -> None:
        """A token was relayed; the first one sets the time to first token."""
        if self.ttft_ms is None:
            self.ttft_ms = self.elapsed_ms()
        self.tokens_relayed += 1

    def note(self, event: ChatEvent) -> None:
        """Learn from an event that is not a token: usage, the end, the route that served."""
        if type(event) is Usage:
            self.note_usage(event)
        elif type(event) is StreamEnd:
            self.outcome = "completed"
            self.finish_reason = event.finish_reason
        elif type(event) is RouteServed:
            self.route = event.route
            self.provider = event.provider
            self.model = event.model
            self.attempts = event.attempts

    def note_failure(self, exc: AuraError) -> None:
        """The outcome of a failed request, for the log line and the upstream-error metric."""
        self.outcome = f"error:{type(exc).__name__}"
        self.error = str(exc)
        if isinstance(exc, ChatModelError):
            self.error_provider = exc.provider
            if exc.status is not None:
                self.error = f"{exc} (upstream status {exc.status})"

    def note_disconnect(self) -> None:
        """The client left before the reply was over (logged as 499 if nothing was sent)."""
        self.outcome = "client_disconnected"

    def note_internal_failure(self) -> None:
        """A bug of ours ended the reply; the caller logs the traceback once."""
        self.outcome = "error:internal"

    def note_cut(self, stop_message: str | None, total_timeout: float) -> str:
        """The reply was cut by the shutdown drain (`stop_message`) or by UPSTREAM_TOTAL_TIMEOUT;
        returns the reason, safe to show."""
        message = stop_message or f"the reply took longer than {total_timeout:g} s"
        self.outcome = "error:shutdown" if stop_message else "error:total_timeout"
        self.error = message
        return message

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
    record: RequestRecord = scope[RECORD_SCOPE_KEY]  # type: ignore[typeddict-item]
    return record


def request_id_of(scope: Scope) -> str | None:
    """The id the middleware gave the current request, if it ran."""
    request_id = scope.get(REQUEST_ID_SCOPE_KEY)
    return request_id if isinstance(request_id, str) else None
