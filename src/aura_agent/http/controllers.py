"""HTTP routes: health, readiness and the streaming chat endpoint."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.response import Response

from aura_agent import __version__
from aura_agent.config import Settings
from aura_agent.domain.errors import AuraError
from aura_agent.domain.ports import ChatModel, SessionStore
from aura_agent.http.dto import (
    ChatOperation,
    HealthResponse,
    ReadinessResponse,
    decode_chat_request,
    require_json_body,
    validate_chat,
)
from aura_agent.http.problems import PROBLEM_MEDIA_TYPE, Problem
from aura_agent.http.request_context import get_record
from aura_agent.http.sse_response import SSEResponse
from aura_agent.http.stream_deps import StreamingDeps
from aura_agent.http.streaming import sse_body
from aura_agent.http.tenancy import scoped_session_id, tenant_of

READINESS_TIMEOUT_SECONDS = 3.0


class HealthController(Controller):
    """Unauthenticated probes for load balancers and orchestrators."""

    @get("/health", summary="Liveness: the process is up")
    async def health(self, settings: NamedDependency[Settings]) -> HealthResponse:
        """Cheap and dependency-free, so a slow provider never makes the process look dead."""
        routes = settings.routes
        model = routes.get(routes.default).model
        return HealthResponse(status="healthy", model=model, version=__version__)

    @get("/ready", summary="Readiness: every dependency answers")
    async def ready(
        self,
        chat_model: NamedDependency[ChatModel],
        session_store: NamedDependency[SessionStore],
    ) -> Response[ReadinessResponse]:
        """Check the model provider and the session store concurrently, each with a time limit."""
        names = ("model", "session_store")
        results = await asyncio.gather(
            _probe(chat_model.check()), _probe(session_store.check()), return_exceptions=False
        )
        checks = dict(zip(names, results, strict=True))
        healthy = all(result == "ok" for result in results)
        return Response(
            ReadinessResponse(status="ready" if healthy else "unavailable", checks=checks),
            status_code=200 if healthy else 503,
        )


async def _probe(check: Any) -> str:
    try:
        await asyncio.wait_for(check, READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"failed: no answer within {READINESS_TIMEOUT_SECONDS:g} s"
    except AuraError as exc:
        return f"failed: {exc}"
    return "ok"


class ChatController(Controller):
    """The seed's streaming chat endpoint."""

    @post(
        "/chat",
        status_code=200,
        summary="Stream a reply as Server-Sent Events",
        description=(
            "Body: {message, session_id?, model?, temperature?, max_tokens?}. Each token is one "
            "`data:` event; the stream ends with `event: done` / `data: [DONE]`, or with "
            "`event: error` and a readable message."
        ),
        operation_class=ChatOperation,
        response_description="An event stream of tokens ending with `done` or `error`",
        responses={
            status: ResponseSpec(
                data_container=Problem,
                generate_examples=False,
                media_type=PROBLEM_MEDIA_TYPE,
                description=description,
            )
            for status, description in (
                (400, "The body is not a valid chat request; `field` names what is wrong"),
                (401, "The x-api-key header is missing or wrong"),
                (413, "The body is larger than MAX_BODY_BYTES"),
                (429, "This key is over its rate or stream limit; retry after Retry-After"),
                (415, "The body is declared as something other than JSON"),
                (
                    503,
                    "The session store is unavailable, or this instance is at its stream cap "
                    "or shutting down; retry after Retry-After seconds",
                ),
            )
        },
    )
    async def chat(
        self, request: Request[Any, Any, Any], streaming: NamedDependency[StreamingDeps]
    ) -> SSEResponse:
        """Validate, admit the stream, load the tenant's session (errors here are still HTTP
        statuses), then stream."""
        require_json_body(request.headers.get("content-type"))
        settings, chat_service = streaming.settings, streaming.chat_service
        limits = streaming.limits
        tenant = tenant_of(request.scope)
        chat_request = decode_chat_request(await request.body())
        options = validate_chat(chat_request, settings)
        session_id = chat_request.session_id or str(uuid.uuid4())
        record = get_record(request.scope)
        record.session_id = session_id
        record.provider = chat_service.model.provider
        record.route = options.model or chat_service.model.default_model
        record.requested_route = record.route
        record.include_usage = chat_request.include_usage
        stream = await limits.open_stream(tenant, record)
        try:
            turn = await chat_service.prepare(
                scoped_session_id(tenant, session_id), chat_request.message, options
            )
        except BaseException:
            await stream.close()
            raise
        body = sse_body(chat_service.stream_reply(turn), record=record)
        return SSEResponse(
            body,
            headers={"X-Session-Id": session_id},
            stream=stream,
            keepalive_seconds=settings.keepalive_seconds,
        )
