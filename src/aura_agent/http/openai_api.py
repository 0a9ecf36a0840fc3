"""The OpenAI-compatible API: `POST /v1/chat/completions`, `GET /v1/models` (and `/{id}`).

Any OpenAI SDK or tool can use the service by pointing its base URL at `/v1`: model names are
the configured routes (same retries and fallbacks as `/chat`), the key goes in
`Authorization: Bearer` (or `x-api-key`), and every answer, error included, has OpenAI's shape.

Requests are stateless, as OpenAI's are: the client sends the whole conversation and nothing is
stored. With an `X-Session-Id` header the service keeps the history instead, exactly as `/chat`
does: the last user message of `messages` is the new turn, the history comes from the store.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any, Final

import msgspec
import structlog
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from aura_agent.application.chat_service import ChatService
from aura_agent.config import Settings
from aura_agent.domain.errors import AuraError, ChatModelError, StoreUnavailable
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message
from aura_agent.http.auth import ApiKeyGuard
from aura_agent.http.bearer_auth import BearerOrApiKeyGuard
from aura_agent.http.dto import SESSION_ID_PATTERN
from aura_agent.http.guards import AsyncGuard, all_of
from aura_agent.http.limits import LimitProblem
from aura_agent.http.openai_dto import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ErrorBody,
    ErrorDetail,
    ModelList,
    ModelObject,
    OpenAIError,
    completion_usage,
    decode_completion_request,
    error_for,
    last_user_text,
    validate_completion,
)
from aura_agent.http.openai_stream import (
    ChunkEncoder,
    chunk_stream,
    collect_completion,
    cut_short_error,
    final_error_frame,
)
from aura_agent.http.problems import RequestProblem
from aura_agent.http.request_context import get_record
from aura_agent.http.sse_response import DeferredStart, SSEResponse
from aura_agent.http.stream_control import ActiveStream
from aura_agent.http.stream_deps import StreamingDeps
from aura_agent.http.tenancy import scoped_session_id, tenant_of

SESSION_HEADER: Final = "x-session-id"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_STARTED: Final = int(time.time())  # `created` of the listed models: they exist since startup
_encode: Final = msgspec.json.Encoder().encode
_log = structlog.get_logger("aura_agent.http")


def _session_id(request: Request[Any, Any, Any]) -> str | None:
    """The `X-Session-Id` header, checked like `/chat`'s `session_id`; None when absent."""
    session_id = request.headers.get(SESSION_HEADER)
    if session_id is None:
        return None
    if _SESSION_ID.fullmatch(session_id) is None:
        raise OpenAIError(
            "Invalid 'X-Session-Id' header: must be 1 to 128 characters of A-Z, a-z, 0-9, '_' "
            "or '-'.",
            param="X-Session-Id",
            code="invalid_value",
        )
    return session_id


def _session_header(session_id: str | None) -> dict[str, str]:
    return {"X-Session-Id": session_id} if session_id is not None else {}


def _model_object(settings: Settings, name: str) -> ModelObject:
    return ModelObject(id=name, created=_STARTED, owned_by=settings.routes.get(name).provider)


class OpenAIController(Controller):
    """OpenAI's Chat Completions and Models endpoints over the configured routes."""

    @get("/models", summary="List the model routes (OpenAI format)")
    async def list_models(self, settings: NamedDependency[Settings]) -> ModelList:
        """Every configured route; `owned_by` is the provider serving it."""
        return ModelList(data=[_model_object(settings, name) for name in settings.routes.names])

    @get("/models/{model_id:path}", summary="Describe one model route (OpenAI format)")
    async def retrieve_model(
        self, model_id: FromPath[str], settings: NamedDependency[Settings]
    ) -> ModelObject:
        """404 `model_not_found` for a name that is not a route (route names may contain `/`)."""
        name = model_id.lstrip("/")
        if name not in settings.routes.names:
            raise OpenAIError(
                f"The model `{name[:128]}` does not exist or you do not have access to it.",
                status_code=404,
                param="model",
                code="model_not_found",
            )
        return _model_object(settings, name)

    @post(
        "/chat/completions",
        status_code=200,
        summary="Create a chat completion (OpenAI format, streamed or not)",
        description=(
            "OpenAI's Chat Completions request and response formats. `model` is a configured "
            "route. Stateless unless the X-Session-Id header is sent."
        ),
    )
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        streaming: NamedDependency[StreamingDeps],
    ) -> ASGIResponse:
        """Validate, admit the stream (caps as for `/chat`), prepare the turn (store errors are
        still statuses), then answer; the stream's slots are held until the answer is over."""
        settings, chat_service = streaming.settings, streaming.chat_service
        limits = streaming.limits
        tenant = tenant_of(request.scope)
        body = decode_completion_request(await request.body())
        messages, options = validate_completion(body, settings)
        session_id = _session_id(request)
        record = get_record(request.scope)
        route = settings.routes.get(body.model)
        record.route = record.requested_route = route.name
        record.provider = route.provider
        record.session_id = session_id
        active = await limits.open_stream(tenant, record)
        active.final_error = final_error_frame
        if not body.stream:
            try:
                return await self._complete(request, body, messages, options, chat_service, active)
            finally:
                await active.close()
        try:
            return await self._stream(
                request, body, messages, options, settings, chat_service, active
            )
        except BaseException:
            await active.close()
            raise

    async def _turn(
        self,
        request: Request[Any, Any, Any],
        messages: list[Message],
        options: GenerationOptions,
        chat_service: ChatService,
    ) -> AsyncGenerator[ChatEvent, None]:
        session_id = get_record(request.scope).session_id
        if session_id is None:
            turn = chat_service.prepare_stateless(messages, options)
        else:
            scoped = scoped_session_id(tenant_of(request.scope), session_id)
            turn = await chat_service.prepare(scoped, last_user_text(messages), options)
        return chat_service.stream_reply(turn)

    async def _complete(
        self,
        request: Request[Any, Any, Any],
        body: ChatCompletionRequest,
        messages: list[Message],
        options: GenerationOptions,
        chat_service: ChatService,
        active: ActiveStream,
    ) -> ASGIResponse:
        """A non-streamed completion: the whole turn runs under the stream's timer."""
        record = active.record
        created = int(time.time())
        timer = active.time_limit()
        try:
            async with timer:
                active.started(timer)
                events = await self._turn(request, messages, options, chat_service)
                reply = await collect_completion(events, record)
        except TimeoutError:
            if not timer.expired():
                raise
            message = (
                active.stop_message or f"the reply took longer than {active.total_timeout:g} s"
            )
            shutdown = active.stop_message is not None
            record.outcome = "error:shutdown" if shutdown else "error:total_timeout"
            record.error = message
            raise cut_short_error(message, shutdown) from None
        finally:
            active.finished()
        completion = ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=created,
            model=body.model,
            choices=[
                Choice(
                    message=AssistantMessage(content=reply.text),
                    finish_reason=reply.finish_reason,
                )
            ],
            usage=None if reply.usage is None else completion_usage(reply.usage),
        )
        return ASGIResponse(
            body=_encode(completion),
            media_type="application/json",
            headers=_session_header(record.session_id),
        )

    async def _stream(
        self,
        request: Request[Any, Any, Any],
        body: ChatCompletionRequest,
        messages: list[Message],
        options: GenerationOptions,
        settings: Settings,
        chat_service: ChatService,
        active: ActiveStream,
    ) -> ASGIResponse:
        """A streamed completion: `SSEResponse` runs the body under the stream's timer, and
        holds its status back for up to one keep-alive period, so that a failure before the
        first token (a 429, every route failed) is still a real HTTP error."""
        record = active.record
        events = await self._turn(request, messages, options, chat_service)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        encoder = ChunkEncoder(completion_id, created, body.model, include_usage=body.include_usage)
        start = DeferredStart(opening=encoder.role)
        stream = chunk_stream(
            events, encoder, start=start, record=record, include_usage=body.include_usage
        )
        return SSEResponse(
            stream,
            headers=_session_header(record.session_id),
            stream=active,
            keepalive_seconds=settings.keepalive_seconds,
            deferred=start,
        )


# -- errors in OpenAI's shape ------------------------------------------------------------------

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


def openai_router(keys: ApiKeyGuard, *guards: AsyncGuard) -> Router:
    """`/v1` behind a bearer or x-api-key key checked by `keys` (then `guards`, e.g. the tenant's
    rate limit), answering errors as OpenAI does."""
    return Router(
        path="/v1",
        route_handlers=[OpenAIController],
        guards=[all_of(BearerOrApiKeyGuard(keys), *guards)],
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
