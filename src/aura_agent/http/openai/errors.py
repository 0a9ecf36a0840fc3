"""Errors in OpenAI's shape: the error object, the domain's failures in OpenAI's terms, and the
exception handlers of `/v1` (which override the seed API's problem+json there).

An OpenAI SDK reacts to the status and `type`/`code` (it retries a 429 and a 5xx, raises
`AuthenticationError` on a 401, ...), so each failure is mapped to what makes the SDK do the
right thing.
"""

from __future__ import annotations

import math
from typing import Any, Final

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException

from aura_agent.domain.errors import (
    AllRoutesFailed,
    AuraError,
    ChatModelError,
    ContextTooLong,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StoreUnavailable,
    TurnNotSavedError,
    UnsupportedOption,
)
from aura_agent.http.limits import LimitProblem
from aura_agent.http.problems import RequestProblem

_log = structlog.get_logger("aura_agent.http")


class ErrorDetail(msgspec.Struct, kw_only=True, frozen=True):
    """OpenAI's error object; `param` and `code` are null when they do not apply."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct, kw_only=True, frozen=True):
    """`{"error": {...}}`: the body of every `/v1` error response and of a mid-stream failure."""

    error: ErrorDetail


class OpenAIError(HTTPException):
    """A `/v1` request the service will not serve, described as OpenAI describes its errors."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, status_code=status_code, headers=headers)
        self.error = ErrorDetail(message=message, type=type, param=param, code=code)


def error_for(exc: AuraError) -> OpenAIError:
    """The status and error object for a failure, chosen so OpenAI clients react sensibly.

    Upstream rate limits stay 429 (with Retry-After when known), so SDKs back off; an
    unreachable, overloaded or slow provider is 503/504; a request the provider refused is 400;
    everything else the provider got wrong (our credentials, a broken stream) is 502. When every
    route failed, the last failure decides, while the message still names every route.
    """
    cause = exc.last_error if isinstance(exc, AllRoutesFailed) else exc
    message = str(exc)
    if isinstance(cause, ProviderRateLimited):
        headers = None
        if cause.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(cause.retry_after)))}
        return OpenAIError(
            message, status_code=429, type="requests", code="rate_limit_exceeded", headers=headers
        )
    if isinstance(cause, ContextTooLong):
        return OpenAIError(message, param="messages", code="context_length_exceeded")
    if isinstance(cause, UnsupportedOption):
        return OpenAIError(message, param=cause.param, code="unsupported_parameter")
    if isinstance(cause, ProviderBadRequest):
        return OpenAIError(message, code="upstream_bad_request")
    if isinstance(cause, ProviderOverloaded | ProviderUnavailable):
        return OpenAIError(
            message, status_code=503, type="server_error", code="upstream_unavailable"
        )
    if isinstance(cause, ProviderTimeout):
        return OpenAIError(message, status_code=504, type="server_error", code="upstream_timeout")
    if isinstance(cause, StoreUnavailable):
        return OpenAIError(
            message,
            status_code=503,
            type="server_error",
            code="session_store_unavailable",
            headers={"Retry-After": "2"},
        )
    if isinstance(cause, TurnNotSavedError):
        return OpenAIError(message, status_code=503, type="server_error", code="turn_not_saved")
    return OpenAIError(message, status_code=502, type="server_error", code="upstream_error")


_ERROR_MEDIA_TYPE: Final = "application/json"


def _error_response(
    error: ErrorDetail, status: int, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(
        ErrorBody(error=error), status_code=status, media_type=_ERROR_MEDIA_TYPE, headers=headers
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Every refusal before a reply starts: validation, auth, body size, rate limits."""
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, OpenAIError):
        return _error_response(exc.error, status, headers or None)
    message = exc.detail
    kind, param, code = "invalid_request_error", None, None
    if isinstance(exc, NotAuthorizedException):
        code = "invalid_api_key"
        headers.setdefault("WWW-Authenticate", "Bearer")
    elif status == 413:
        message = "the request body is larger than this service accepts"
        code = "request_too_large"
    elif status == 429:
        kind, code = "requests", "rate_limit_exceeded"
    elif status == 404:
        code = "not_found"
    elif status >= 500 and isinstance(exc, RequestProblem):  # deliberate, e.g. instance full
        kind, code = "server_error", "service_unavailable"
    elif status >= 500:
        _log.error("internal_error", exc_info=exc)
        message, kind, code = "the server failed to handle this request", "server_error", None
    if isinstance(exc, RequestProblem):
        param = exc.field
    error = ErrorDetail(message=message, type=kind, param=param, code=code)
    return _error_response(error, status, headers or None)


def _domain_error(_: Request[Any, Any, Any], exc: AuraError) -> Response[ErrorBody]:
    """A store outage while preparing, or a model failure raised before the response began."""
    if isinstance(exc, StoreUnavailable):
        _log.warning("session_store_unavailable", error=str(exc))
    error = error_for(exc)
    return _error_response(error.error, error.status_code, error.headers)


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    _log.exception("unhandled_error", error_type=type(exc).__name__)
    error = ErrorDetail(message="the server failed to handle this request", type="server_error")
    return _error_response(error, 500)


OPENAI_EXCEPTION_HANDLERS: Final = {
    HTTPException: _http_error,
    LimitProblem: _http_error,
    # The app's own handlers for these answer problem+json; these keys override them under /v1.
    StoreUnavailable: _domain_error,
    ChatModelError: _domain_error,
    AuraError: _domain_error,
    Exception: _unexpected,
}
