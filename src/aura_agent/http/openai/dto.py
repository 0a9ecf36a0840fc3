"""Requests of the OpenAI-compatible API (`/v1`): decoding, and the checks that need settings.

Faithful to OpenAI's Chat Completions request: tools and tool choice, assistant messages with
`tool_calls`, `tool` results, structured output and the sampling options are decoded and passed
on; `developer` is read as `system`, and content may be a string or an array of text parts.
Nothing is silently dropped: an unknown top-level field is a 400 naming it, except the short
list of fields that are harmless to ignore (`IGNORED_FIELDS`, documented in the README), and
what cannot be honoured yet (several choices, images, logprobs) is a 400 that names the
parameter.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from aura_agent.config import Settings
from aura_agent.domain.models import GenerationOptions, Message, Role
from aura_agent.http.openai.errors import OpenAIError
from aura_agent.http.openai.tools import (
    check_tool_results,
    sampling_options,
    tool_call_id_of,
    tool_calls_of,
    tool_options,
)
from aura_agent.http.validation import CONTROL_CHARACTER_RULE, find_control_character
from aura_agent.msgspec_errors import locate

IGNORED_FIELDS: Final = (
    "metadata",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
    "store",
)
"""Accepted and not acted on: they only concern OpenAI's own bookkeeping, not the reply."""


class ContentPart(msgspec.Struct, kw_only=True, frozen=True):
    """One part of an array content; only `text` parts are supported."""

    type: str
    text: str | None = None


class RequestFunction(msgspec.Struct, kw_only=True, frozen=True):
    """The function of an assistant's tool call."""

    name: str
    arguments: str


class RequestToolCall(msgspec.Struct, kw_only=True, frozen=True):
    """One tool call of an assistant message being sent back."""

    id: str
    type: Literal["function"] = "function"
    function: RequestFunction


class RequestMessage(msgspec.Struct, kw_only=True, frozen=True):
    """One message of `messages`, before its role and content are checked.

    Fields an SDK echoes back from a reply (`refusal`, `annotations`, ...) are ignored."""

    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[RequestToolCall] | None = None
    tool_call_id: str | None = None


class StreamOptions(msgspec.Struct, kw_only=True, frozen=True):
    """`stream_options`: whether to end the stream with a usage chunk."""

    include_usage: bool | None = None


class FunctionSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A function the model may call, as OpenAI describes one."""

    name: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One entry of `tools`; only function tools exist in Chat Completions."""

    type: Literal["function"]
    function: FunctionSpec


class ChosenFunction(msgspec.Struct, kw_only=True, frozen=True):
    name: str


class NamedToolChoice(msgspec.Struct, kw_only=True, frozen=True):
    """`tool_choice: {"type": "function", "function": {"name": ...}}`."""

    type: Literal["function"]
    function: ChosenFunction


class JsonSchemaFormat(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormatSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`response_format`: text (the default), any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]


class ChatCompletionRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /v1/chat/completions`; see the module docstring for unknown fields."""

    model: str
    messages: list[RequestMessage]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    n: int | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatSpec | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # harmless to ignore (IGNORED_FIELDS)
    metadata: Any = None
    prompt_cache_key: Any = None
    safety_identifier: Any = None
    service_tier: Any = None
    store: Any = None

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
    "tool": Role.TOOL,
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
        if where.unknown is not None:
            field = f"{param}.{where.unknown}" if param else where.unknown
            raise OpenAIError(
                f"Unrecognized request argument supplied: {field}",
                param=field,
                code="unknown_parameter",
            ) from None
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
        if message.role == "assistant" and message.tool_calls:
            return ""  # an assistant turn that only called tools
        raise OpenAIError(
            f"Invalid '{param}': a string or an array of text parts is required",
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
        deprecated = message.role == "function"
        raise OpenAIError(
            f"Invalid 'messages[{index}].role': "
            + (
                "'function' messages are deprecated; send 'tool' messages instead"
                if deprecated
                else f"{message.role[:40]!r}; expected system, developer, user, assistant or tool"
            ),
            param=f"messages[{index}].role",
            code="unsupported_value" if deprecated else "invalid_value",
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
    return Message(
        role=role,
        content=text,
        name=message.name,
        tool_calls=tool_calls_of(message, index),
        tool_call_id=tool_call_id_of(message, index),
    )


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
    check_tool_results(messages)
    options = GenerationOptions(
        model=request.model,
        temperature=request.temperature,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        **tool_options(request),
        **sampling_options(request),
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
