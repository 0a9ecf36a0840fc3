"""The OpenAI-compatible API: `POST /v1/chat/completions`, `GET /v1/models` (and `/{id}`).

Any OpenAI SDK or tool can use the service by pointing its base URL at `/v1`: model names are
the configured routes (same retries and fallbacks as `/chat`), the key goes in
`Authorization: Bearer` (or `x-api-key`), and every answer, error included, has OpenAI's shape.

Requests are stateless, as OpenAI's are: the client sends the whole conversation and nothing is
stored. With an `X-Session-Id` header the service keeps the history instead, exactly as `/chat`
does: the last user message of `messages` is the new turn, the history comes from the store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from aura_agent.application.chat_service import ChatService
from aura_agent.config import Settings
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message
from aura_agent.http.auth import (
    ApiKeyGuard,
    AsyncGuard,
    BearerOrApiKeyGuard,
    all_of,
    scoped_session_id,
    tenant_of,
)
from aura_agent.http.dependencies import StreamingDeps
from aura_agent.http.openai.chunks import ChunkEncoder, cut_short_error, final_error_frame
from aura_agent.http.openai.dto import (
    ChatCompletionRequest,
    decode_completion_request,
    last_user_text,
    validate_completion,
)
from aura_agent.http.openai.errors import OPENAI_EXCEPTION_HANDLERS, OpenAIError
from aura_agent.http.openai.responses import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    ModelList,
    ModelObject,
    ResponseFunction,
    ResponseToolCall,
    completion_usage,
)
from aura_agent.http.openai.stream import Completion, chunk_stream, collect_completion
from aura_agent.http.record import get_record
from aura_agent.http.sse.control import ActiveStream
from aura_agent.http.sse.response import DeferredStart, SSEResponse
from aura_agent.http.validation import SESSION_ID_RULE, is_session_id

SESSION_HEADER: Final = "x-session-id"
_STARTED: Final = int(time.time())  # `created` of the listed models: they exist since startup
_encode: Final = msgspec.json.Encoder().encode


def _session_id(request: Request[Any, Any, Any]) -> str | None:
    """The `X-Session-Id` header, checked like `/chat`'s `session_id`; None when absent."""
    session_id = request.headers.get(SESSION_HEADER)
    if session_id is None:
        return None
    if not is_session_id(session_id):
        raise OpenAIError(
            f"Invalid 'X-Session-Id' header: {SESSION_ID_RULE}.",
            param="X-Session-Id",
            code="invalid_value",
        )
    return session_id


def _refuse_unstorable(messages: list[Message], options: GenerationOptions) -> None:
    """Sessions store text turns only, for now: a tool conversation is refused, not truncated."""
    if options.tools or any(m.tool_calls or m.tool_call_id is not None for m in messages):
        raise OpenAIError(
            "Invalid 'X-Session-Id' header: stored sessions keep text turns only; send tool "
            "conversations without X-Session-Id (stateless).",
            param="X-Session-Id",
            code="unsupported_value",
        )


def _session_header(session_id: str | None) -> dict[str, str]:
    return {"X-Session-Id": session_id} if session_id is not None else {}


def assistant_message(reply: Completion) -> AssistantMessage:
    """The reply as OpenAI's `message`: text, or null content beside the tool calls."""
    if not reply.tool_calls:
        return AssistantMessage(content=reply.text)
    return AssistantMessage(
        content=reply.text or None,
        tool_calls=[
            ResponseToolCall(
                id=call.id, function=ResponseFunction(name=call.name, arguments=call.arguments)
            )
            for call in reply.tool_calls
        ],
    )


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
        if session_id is not None:
            _refuse_unstorable(messages, options)
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
            message = record.note_cut(active.stop_message, active.total_timeout)
            raise cut_short_error(message, active.stop_message is not None) from None
        finally:
            active.finished()
        completion = ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=created,
            model=body.model,
            choices=[Choice(message=assistant_message(reply), finish_reason=reply.finish_reason)],
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


def openai_router(keys: ApiKeyGuard, *guards: AsyncGuard) -> Router:
    """`/v1` behind a bearer or x-api-key key checked by `keys` (then `guards`, e.g. the tenant's
    rate limit), answering errors as OpenAI does."""
    return Router(
        path="/v1",
        route_handlers=[OpenAIController],
        guards=[all_of(BearerOrApiKeyGuard(keys), *guards)],
        exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
