"""`POST /chat`: the seed's streaming chat endpoint."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency

from aura_agent.http.auth import scoped_session_id, tenant_of
from aura_agent.http.chat.dto import decode_chat_request, require_json_body, validate_chat
from aura_agent.http.chat.openapi import ChatOperation
from aura_agent.http.chat.stream import sse_body
from aura_agent.http.dependencies import StreamingDeps
from aura_agent.http.problems import documented_problems
from aura_agent.http.record import get_record
from aura_agent.http.sse.response import SSEResponse


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
        responses=documented_problems(
            (
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
        ),
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
