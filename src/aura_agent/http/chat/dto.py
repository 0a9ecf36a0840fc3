"""Request and response bodies of the public API, decoded and validated with msgspec.

Static rules (types, ranges, the session id alphabet) live in the Structs; rules that depend on
configuration (message length, max_tokens cap, model allow-list) are checked in `validate_chat`.
Every refusal is a `RequestProblem` naming the field, so hostile input (invalid UTF-8, deep
nesting, control characters, ids that would split a store key) is a 4xx, never a 500. The
`require_json_body` check of the content type runs before the body is read.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from aura_agent.config import Settings
from aura_agent.domain.models import GenerationOptions
from aura_agent.http.problems import RequestProblem
from aura_agent.http.validation import (
    CONTROL_CHARACTER_RULE,
    SESSION_ID_RULE,
    SessionId,
    find_control_character,
    is_session_id,
)
from aura_agent.msgspec_errors import locate


class ChatRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `POST /chat`; unknown fields are ignored so older and newer clients both work."""

    message: str
    session_id: SessionId | None = None
    model: str | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    include_usage: bool = False  # opt-in `event: usage` before `done`; seed clients never see it


_chat_decoder = msgspec.json.Decoder(ChatRequest)


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
        where = locate(exc)
        field = where.missing or where.path or "body"
        reason = where.reason
        if field == "session_id" and ("pattern" in reason or "regex" in reason):
            reason = SESSION_ID_RULE
        raise RequestProblem(f"invalid {field}: {reason}", field=field) from None
    except msgspec.DecodeError as exc:
        raise RequestProblem(f"the body is not valid JSON: {exc}", field="body") from None
    except RecursionError:  # msgspec's own depth limit, e.g. 100k `[` in an ignored field
        raise RequestProblem("the body is nested too deeply", field="body") from None
    if request.session_id is not None and not is_session_id(request.session_id):
        raise RequestProblem(f"invalid session_id: {SESSION_ID_RULE}", field="session_id")
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
    if control := find_control_character(request.message):
        raise RequestProblem(
            f"message contains the control character {control.code_point} at index "
            f"{control.position}; {CONTROL_CHARACTER_RULE}",
            field="message",
        )
    if request.max_tokens is not None and request.max_tokens > settings.max_tokens_limit:
        raise RequestProblem(
            f"max_tokens must be between 1 and {settings.max_tokens_limit}", field="max_tokens"
        )
    if request.model is not None and request.model not in settings.model_allow_list:
        allowed = ", ".join(settings.model_allow_list)
        raise RequestProblem(f"model must be one of: {allowed}", field="model")
    # The seed API's defaults (MODEL_TEMPERATURE, MODEL_MAX_TOKENS) apply when a field is unset.
    return GenerationOptions(
        model=request.model,
        temperature=settings.model_temperature
        if request.temperature is None
        else request.temperature,
        max_tokens=settings.model_max_tokens if request.max_tokens is None else request.max_tokens,
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
