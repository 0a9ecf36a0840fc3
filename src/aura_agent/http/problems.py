"""Errors as RFC 9457 problem details, in one place, for every failure before a stream starts.

Nothing here ever puts a stack trace, a key or an upstream URL in a response.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
)
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from aura_agent.domain.errors import ChatModelError, StoreUnavailable
from aura_agent.http.record import request_id_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = structlog.get_logger("aura_agent.http")
_PATH_SHOWN = 200


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    request_id: str | None = None


def documented_problems(statuses: Iterable[tuple[int, str]]) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` for a route's problem+json answers: (status, when it is sent)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            media_type=PROBLEM_MEDIA_TYPE,
            description=description,
        )
        for status, description in statuses
    }


class RequestProblem(HTTPException):
    """A request the service will not serve, with the field at fault when there is one."""

    def __init__(self, detail: str, *, status_code: int = 400, field: str | None = None) -> None:
        super().__init__(detail=detail, status_code=status_code)
        self.field = field


_TITLES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    """Build the problem response; the request id lets a user quote the failure to an operator."""
    return Response(
        Problem(
            title=_TITLES.get(status, "Error"),
            status=status,
            detail=detail,
            field=field,
            request_id=request_id_of(request.scope),
        ),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _shown_path(request: Request[Any, Any, Any]) -> str:
    """The request path for a problem detail, cut short: a path is the caller's own text."""
    path = request.url.path
    return path if len(path) <= _PATH_SHOWN else path[: _PATH_SHOWN - 1] + "…"


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    field = exc.field if isinstance(exc, RequestProblem) else None
    status = exc.status_code
    headers = dict(exc.headers or {})
    detail = exc.detail
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'ApiKey header="x-api-key"')
    elif isinstance(exc, MethodNotAllowedException):
        allowed = headers.get("allow") or headers.get("Allow")
        detail = f"{request.method} is not allowed on {_shown_path(request)}"
        if allowed:
            detail += f"; allowed: {allowed}"
    elif isinstance(exc, NotFoundException) and not isinstance(exc, RequestProblem):
        detail = f"no route matches {request.method} {_shown_path(request)}"
    if status >= 500:
        _log.error("internal_error", exc_info=exc)
        detail = "the server failed to handle this request"
    elif status == 413:
        detail = "the request body is larger than this service accepts"
    elif status == 400 and not isinstance(exc, RequestProblem) and exc.extra:
        detail = f"{detail}: {exc.extra}"
    return problem_response(request, status, detail, field=field, headers=headers or None)


def _store_unavailable(request: Request[Any, Any, Any], exc: StoreUnavailable) -> Response[Problem]:
    _log.warning("session_store_unavailable", error=str(exc))
    return problem_response(request, 503, str(exc), headers={"Retry-After": "2"})


def _model_error(request: Request[Any, Any, Any], exc: ChatModelError) -> Response[Problem]:
    return problem_response(request, 502, str(exc))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    _log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "the server failed to handle this request"
    )


EXCEPTION_HANDLERS = {
    HTTPException: _http_exception,
    StoreUnavailable: _store_unavailable,
    ChatModelError: _model_error,
    Exception: _unexpected,
}
