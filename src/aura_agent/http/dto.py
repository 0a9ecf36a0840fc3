"""Request and response bodies of the public API, decoded and validated with msgspec.

Static rules (types, ranges, the session id alphabet) live in the Structs; rules that depend on
configuration (message length, max_tokens cap, model allow-list) are checked in `validate_chat`.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from aura_agent.config import Settings
from aura_agent.domain.models import GenerationOptions
from aura_agent.http.problems import RequestProblem

SESSION_ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"

SessionId = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]


class ChatRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `POST /chat`; unknown fields are ignored so older and newer clients both work."""

    message: str
    session_id: SessionId | None = None
    model: str | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None


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
        return _chat_decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _FIELD_AT.search(text)
        field = match.group(1) if match and match.group(1) else "body"
        if missing := _MISSING_FIELD.search(text):
            field = missing.group(1)
        reason = text[: match.start()] if match else text
        if field == "session_id" and "pattern" in reason:
            reason = "must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'"
        raise RequestProblem(f"invalid {field}: {reason}", field=field) from None
    except msgspec.DecodeError as exc:
        raise RequestProblem(f"the body is not valid JSON: {exc}", field="body") from None


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
