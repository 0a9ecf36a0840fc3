"""Bodies of the OpenAI-compatible API (`/v1`): requests, responses and errors, in OpenAI's shapes.

Requests decode leniently, as OpenAI's own clients expect: unknown fields (`tools`, `top_p`,
`user`, ...) are ignored, `developer` is read as `system`, and content may be a string or an
array of text parts. What cannot be honoured (several choices, images, tool messages) is a 400
that names the parameter, never a silent misbehaviour.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Final

import msgspec
from litestar.exceptions import HTTPException

from aura_agent.config import Settings
from aura_agent.domain.errors import (
    AllRoutesFailed,
    AuraError,
    ContextTooLong,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StoreUnavailable,
    TurnNotSavedError,
)
from aura_agent.domain.models import GenerationOptions, Message, Role, Usage

# -- errors ---------------------------------------------------------------------------------


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


# -- requests -------------------------------------------------------------------------------


class ContentPart(msgspec.Struct, kw_only=True, frozen=True):
    """One part of an array content; only `text` parts are supported."""

    type: str
    text: str | None = None


class RequestMessage(msgspec.Struct, kw_only=True, frozen=True):
    """One message of `messages`, before its role and content are checked."""

    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(msgspec.Struct, kw_only=True, frozen=True):
    """`stream_options`: whether to end the stream with a usage chunk."""

    include_usage: bool | None = None


class ChatCompletionRequest(msgspec.Struct, kw_only=True, frozen=True):
    """The body of `POST /v1/chat/completions`; fields this service does not use are ignored."""

    model: str
    messages: list[RequestMessage]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    n: int | None = None

    @property
    def include_usage(self) -> bool:
        """Whether a streamed reply ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)


_decoder: Final = msgspec.json.Decoder(ChatCompletionRequest)
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_ROLES: Final = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
}
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def decode_completion_request(body: bytes) -> ChatCompletionRequest:
    """Decode the body, or raise a 400 whose `param` names the offending field."""
    if not body.strip():
        raise OpenAIError("the request body is empty; send a JSON object")
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT_PATH.search(text)
        param = at.group(1) if at and at.group(1) else None
        if missing := _MISSING.search(text):
            name = missing.group(1)
            param = f"{param}.{name}" if param else name
            raise OpenAIError(
                f"Missing required parameter: '{param}'.",
                param=param,
                code="missing_required_parameter",
            ) from None
        reason = text[: at.start()] if at else text
        shown = f"'{param}'" if param else "the body"
        raise OpenAIError(f"Invalid {shown}: {reason}", param=param, code="invalid_value") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise OpenAIError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OpenAIError("the body is nested too deeply") from None


def _text_of(message: RequestMessage, index: int) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    param = f"messages[{index}].content"
    if content is None:
        raise OpenAIError(
            f"Invalid '{param}': a string or an array of text parts is required (tool calls "
            "are not supported)",
            param=param,
            code="invalid_value",
        )
    texts: list[str] = []
    for position, part in enumerate(content):
        if part.type != "text":
            raise OpenAIError(
                f"Invalid '{param}[{position}].type': only 'text' parts are supported, "
                f"not {part.type[:40]!r}",
                param=f"{param}[{position}].type",
                code="unsupported_value",
            )
        if part.text is None:
            raise OpenAIError(
                f"Missing required parameter: '{param}[{position}].text'.",
                param=f"{param}[{position}].text",
                code="missing_required_parameter",
            )
        texts.append(part.text)
    return "\n".join(texts)


def _message(message: RequestMessage, index: int, settings: Settings) -> Message:
    role = _ROLES.get(message.role)
    if role is None:
        supported = message.role in ("tool", "function")
        raise OpenAIError(
            f"Invalid 'messages[{index}].role': "
            + (
                f"{message.role!r} messages are not supported (no tool calls)"
                if supported
                else f"{message.role[:40]!r}; expected system, developer, user or assistant"
            ),
            param=f"messages[{index}].role",
            code="unsupported_value" if supported else "invalid_value",
        )
    text = _text_of(message, index)
    param = f"messages[{index}].content"
    if len(text) > settings.max_message_chars:
        raise OpenAIError(
            f"Invalid '{param}': {len(text)} characters; the limit is {settings.max_message_chars}",
            param=param,
            code="string_above_max_length",
        )
    if control := _CONTROL_CHARACTER.search(text):
        raise OpenAIError(
            f"Invalid '{param}': the control character U+{ord(control.group()):04X} at index "
            f"{control.start()}; only tab, line feed and carriage return are allowed",
            param=param,
            code="invalid_value",
        )
    return Message(role=role, content=text)


def validate_completion(
    request: ChatCompletionRequest, settings: Settings
) -> tuple[list[Message], GenerationOptions]:
    """Apply the configured limits; return the conversation and the options for the model."""
    if request.model not in settings.routes.names:
        raise OpenAIError(
            f"The model `{request.model[:128]}` does not exist or you do not have access to it; "
            f"available: {', '.join(settings.routes.names)}.",
            status_code=404,
            param="model",
            code="model_not_found",
        )
    if request.n is not None and request.n != 1:
        raise OpenAIError(
            "Invalid 'n': only one choice per request is supported (n=1).",
            param="n",
            code="unsupported_value",
        )
    for name in ("max_completion_tokens", "max_tokens"):
        value = getattr(request, name)
        if value is not None and value > settings.max_tokens_limit:
            raise OpenAIError(
                f"Invalid '{name}': {value} is above the limit of {settings.max_tokens_limit}.",
                param=name,
                code="integer_above_max_value",
            )
    if not request.messages:
        raise OpenAIError(
            "Invalid 'messages': empty array; at least one message is required.",
            param="messages",
            code="empty_array",
        )
    messages = [
        _message(message, index, settings) for index, message in enumerate(request.messages)
    ]
    options = GenerationOptions(
        model=request.model,
        temperature=request.temperature,
        max_tokens=request.max_completion_tokens or request.max_tokens,
    )
    return messages, options


def last_user_text(messages: list[Message]) -> str:
    """The newest user message: the turn a session-backed request adds to its stored history."""
    for message in reversed(messages):
        if message.role is Role.USER:
            if not message.content.strip():
                break
            return message.content
    raise OpenAIError(
        "Invalid 'messages': with X-Session-Id the last user message is the new turn, and it "
        "must not be empty.",
        param="messages",
        code="invalid_value",
    )


# -- responses ------------------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct, kw_only=True, frozen=True):
    """Part of the prompt served from the provider's cache."""

    cached_tokens: int


class CompletionTokensDetails(msgspec.Struct, kw_only=True, frozen=True):
    """Part of the completion spent on (hidden) reasoning."""

    reasoning_tokens: int


class CompletionUsage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """`usage`; the details appear only when the provider reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


def completion_usage(usage: Usage) -> CompletionUsage:
    """OpenAI's usage object for a domain `Usage`."""
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=None
        if usage.cached_tokens is None
        else PromptTokensDetails(cached_tokens=usage.cached_tokens),
        completion_tokens_details=None
        if usage.reasoning_tokens is None
        else CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens),
    )


class AssistantMessage(msgspec.Struct, kw_only=True, frozen=True):
    """The reply of a non-streamed completion."""

    role: str = "assistant"
    content: str
    refusal: None = None


class Choice(msgspec.Struct, kw_only=True, frozen=True):
    """The one choice of a non-streamed completion."""

    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, kw_only=True, frozen=True):
    """The body of a non-streamed `POST /v1/chat/completions`; `usage` is null if unreported."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None


class ModelObject(msgspec.Struct, kw_only=True, frozen=True):
    """One configured route, as `GET /v1/models` lists it."""

    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, kw_only=True, frozen=True):
    """The body of `GET /v1/models`."""

    object: str = "list"
    data: list[ModelObject]


# -- domain errors in OpenAI's terms ----------------------------------------------------------


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
