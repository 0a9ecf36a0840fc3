"""`POST /chat` in OpenAPI: its body and its event stream, which Litestar cannot infer.

The handler reads the raw body itself (validation is ours, see `dto`), so the schema is written
out here, next to nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from aura_agent.http.validation import SESSION_ID_PATTERN

CHAT_REQUEST_SCHEMA: Final = Schema(
    type=OpenAPIType.OBJECT,
    title="ChatRequest",
    required=["message"],
    properties={
        "message": Schema(
            type=OpenAPIType.STRING,
            min_length=1,
            description="The user's message: not blank, at most MAX_MESSAGE_CHARS characters, "
            "no control characters other than tab, line feed and carriage return.",
        ),
        "session_id": Schema(
            one_of=[
                Schema(type=OpenAPIType.STRING, pattern=SESSION_ID_PATTERN),
                Schema(type=OpenAPIType.NULL),
            ],
            description="Continue this conversation; a new id is made when absent.",
        ),
        "model": Schema(
            one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)],
            description="A configured route name (ALLOWED_MODELS or the MODELS_FILE routes).",
        ),
        "temperature": Schema(
            one_of=[
                Schema(type=OpenAPIType.NUMBER, minimum=0, maximum=2),
                Schema(type=OpenAPIType.NULL),
            ]
        ),
        "max_tokens": Schema(
            one_of=[
                Schema(type=OpenAPIType.INTEGER, minimum=1),
                Schema(type=OpenAPIType.NULL),
            ],
            description="At most MAX_TOKENS_LIMIT.",
        ),
        "include_usage": Schema(
            type=OpenAPIType.BOOLEAN,
            description="Send `event: usage` (token counts as JSON) right before `done`.",
        ),
    },
)
"""The body of `POST /chat` as `ChatRequest` decodes it; unknown fields are ignored."""

CHAT_EVENT_SCHEMA: Final = Schema(
    type=OpenAPIType.OBJECT,
    title="ChatEvent",
    description="One event of the reply stream: a token (unnamed, i.e. `message`), then `done` "
    "with data `[DONE]`, or `error` with a readable message. `: keep-alive` comments may come "
    "before the first token.",
    required=["data"],
    properties={
        "event": Schema(type=OpenAPIType.STRING, enum=["message", "usage", "done", "error"]),
        "data": Schema(type=OpenAPIType.STRING),
    },
)
"""One Server-Sent Event of a `POST /chat` reply, as an SSE parser hands it over."""


@dataclass
class ChatOperation(Operation):
    """The OpenAPI operation of `POST /chat`, whose handler reads the raw body itself.

    Litestar documents a request body only for a `data` parameter; this adds it, and says that
    a 200 is an event stream.
    """

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=CHAT_REQUEST_SCHEMA)},
            required=True,
        )
        if self.responses is not None and isinstance(
            ok := self.responses.get("200"), OpenAPIResponse
        ):
            ok.content = {"text/event-stream": OpenAPIMediaType(schema=CHAT_EVENT_SCHEMA)}
