"""Request and response bodies of the public API, decoded and validated with msgspec.

Static rules (types, ranges, the session id alphabet) live in the Structs; rules that depend on
configuration (message length, max_tokens cap, model allow-list) are checked in `validate_chat`.
Every refusal is a `RequestProblem` naming the field, so hostile input (invalid UTF-8, deep
nesting, control characters, ids that would split a store key) is a 4xx, never a 500. The
`require_json_body` check of the content type runs before the body is read, and `ChatOperation`
documents the body in OpenAPI (the handler reads raw bytes, which Litestar cannot describe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final

import msgspec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from aura_agent.config import Settings
from aura_agent.domain.models import GenerationOptions
from aura_agent.http.problems import RequestProblem

SESSION_ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
# Python's `$` also matches before a final "\n" (and msgspec searches with the pattern), so
# the id is checked once more with `fullmatch`: an id ends up in store keys and a response header.
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_SESSION_ID_RULE = "must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'"
# C0 control characters other than tab, line feed and carriage return: never part of a typed
# message, and NUL in particular breaks many downstream systems.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

SessionId = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]


class ChatRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `POST /chat`; unknown fields are ignored so older and newer clients both work."""

    message: str
    session_id: SessionId | None = None
    model: str | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    include_usage: bool = False  # opt-in `event: usage` before `done`; seed clients never see it


class HealthResponse(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `GET /health`, as in the original service."""

    status: str
    model: str
    version: str


class ReadinessResponse(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `GET /ready`: one entry per dependency, "ok" or what failed."""

    status: str
    checks: dict[str, str]


_chat_decoder = msgspec.json.Decoder(ChatRequest)
_FIELD_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def decode_chat_request(body: bytes) -> ChatRequest:
    """Decode the body, or raise a 400 that names the offending field."""
    if not body.strip():
        raise RequestProblem("the request body is empty; send a JSON object", field="body")
    try:
        # msgspec checks UTF-8 only in the strings it decodes (not in ignored fields), and then
        # raises UnicodeDecodeError rather than a DecodeError; one pass over the body is cheap.
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestProblem(
            f"the body is not valid UTF-8 (invalid byte at offset {exc.start})", field="body"
        ) from None
    try:
        request = _chat_decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _FIELD_AT.search(text)
        field = match.group(1) if match and match.group(1) else "body"
        if missing := _MISSING_FIELD.search(text):
            field = missing.group(1)
        reason = text[: match.start()] if match else text
        if field == "session_id" and ("pattern" in reason or "regex" in reason):
            reason = _SESSION_ID_RULE
        raise RequestProblem(f"invalid {field}: {reason}", field=field) from None
    except msgspec.DecodeError as exc:
        raise RequestProblem(f"the body is not valid JSON: {exc}", field="body") from None
    except RecursionError:  # msgspec's own depth limit, e.g. 100k `[` in an ignored field
        raise RequestProblem("the body is nested too deeply", field="body") from None
    if request.session_id is not None and _SESSION_ID.fullmatch(request.session_id) is None:
        raise RequestProblem(f"invalid session_id: {_SESSION_ID_RULE}", field="session_id")
    return request


def validate_chat(request: ChatRequest, settings: Settings) -> GenerationOptions:
    """Apply the configured limits and return the options to pass to the model."""
    if not request.message.strip():
        raise RequestProblem("message must not be empty", field="message")
    if len(request.message) > settings.max_message_chars:
        raise RequestProblem(
            f"message is {len(request.message)} characters long; the limit is "
            f"{settings.max_message_chars}",
            field="message",
        )
    if control := _CONTROL_CHARACTER.search(request.message):
        raise RequestProblem(
            f"message contains the control character U+{ord(control.group()):04X} at index "
            f"{control.start()}; only tab, line feed and carriage return are allowed",
            field="message",
        )
    if request.max_tokens is not None and request.max_tokens > settings.max_tokens_limit:
        raise RequestProblem(
            f"max_tokens must be between 1 and {settings.max_tokens_limit}", field="max_tokens"
        )
    if request.model is not None and request.model not in settings.model_allow_list:
        allowed = ", ".join(settings.model_allow_list)
        raise RequestProblem(f"model must be one of: {allowed}", field="model")
    return GenerationOptions(
        model=request.model, temperature=request.temperature, max_tokens=request.max_tokens
    )


# -- content type -------------------------------------------------------------------------------

_MEDIA_TYPE_SHOWN: Final = 80


def require_json_body(stated: str | None) -> None:
    """For `POST /chat`, given its content-type header: the body is JSON, so a stated content
    type must say so.

    `application/json` and `application/*+json` (any parameters) pass, and so does a request
    that states no content type; a form, `text/plain` or anything else is a 415 naming the
    header, before the body is read. A form or text body is always a client mistake, and
    refusing it keeps the endpoint off the list of cross-site "simple requests".
    """
    if stated is None:
        return
    media_type = stated.partition(";")[0].strip().lower()
    if not media_type:
        return
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    shown = media_type[:_MEDIA_TYPE_SHOWN]
    raise RequestProblem(
        f"the body must be JSON: the content-type header says {shown!r}; send application/json",
        status_code=415,
        field="content-type",
    )


# -- OpenAPI ------------------------------------------------------------------------------------

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
