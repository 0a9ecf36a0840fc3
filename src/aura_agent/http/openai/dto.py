"""Requests of the OpenAI-compatible API (`/v1`): decoding, and the checks that need settings.

Requests decode leniently, as OpenAI's own clients expect: unknown fields (`tools`, `top_p`,
`user`, ...) are ignored, `developer` is read as `system`, and content may be a string or an
array of text parts. What cannot be honoured (several choices, images, tool messages) is a 400
that names the parameter, never a silent misbehaviour.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from aura_agent.config import Settings
from aura_agent.domain.models import GenerationOptions, Message, Role
from aura_agent.http.openai.errors import OpenAIError
from aura_agent.http.validation import CONTROL_CHARACTER_RULE, find_control_character
from aura_agent.msgspec_errors import locate


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
_ROLES: Final = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
}


def decode_completion_request(body: bytes) -> ChatCompletionRequest:
    """Decode the body, or raise a 400 whose `param` names the offending field."""
    if not body.strip():
        raise OpenAIError("the request body is empty; send a JSON object")
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        where = locate(exc)
        param = where.path or None
        if where.missing is not None:
            param = f"{param}.{where.missing}" if param else where.missing
            raise OpenAIError(
                f"Missing required parameter: '{param}'.",
                param=param,
                code="missing_required_parameter",
            ) from None
        reason = where.reason
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
    if control := find_control_character(text):
        raise OpenAIError(
            f"Invalid '{param}': the control character {control.code_point} at index "
            f"{control.position}; {CONTROL_CHARACTER_RULE}",
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
