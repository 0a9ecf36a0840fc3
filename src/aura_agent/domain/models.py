"""Chat messages and the events a model stream produces.

Frozen msgspec Structs: cheap to create on the hot path, hashable, and encodable without adapters.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec


class Role(StrEnum):
    """Who said a message; values match the Chat Completions wire names on purpose."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A function call the assistant asked for; `arguments` is the JSON text the model wrote
    (kept as text: it may not even be valid JSON, and the caller decides what to do then)."""

    id: str
    name: str
    arguments: str


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation.

    `usage` is what the provider reported for an assistant reply (None for user messages and
    for replies stored before usage was kept). Defaults are not encoded, so a stored message
    without usage keeps exactly its old bytes, and older readers ignore the extra field.
    """

    role: Role
    content: str
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    """The calls an assistant message asked for (its `content` may then be empty)."""
    tool_call_id: str | None = None
    """For a `TOOL` message: the call it answers."""
    name: str | None = None
    """The participant's name, as OpenAI's `name` field."""


class TextDelta(msgspec.Struct, frozen=True, tag="text"):
    """A piece of the reply's text, in the order the model produced it.

    `more` is a hint for relays: True when the producer already holds the next event (several
    tokens arrived in one network read), so they can be written downstream together. It never
    asks anyone to wait: a token with `more=False` must be flushed at once.
    """

    text: str
    more: bool = False


class ToolCallDelta(msgspec.Struct, frozen=True, kw_only=True, tag="tool_call"):
    """A piece of a tool call as it streams: the first piece of call `index` carries its `id`
    and `name`, later ones append to its `arguments` (fragments split anywhere)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Usage(msgspec.Struct, frozen=True, kw_only=True, tag="usage"):
    """Token counts the provider reported for the whole request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None


class StreamEnd(msgspec.Struct, frozen=True, kw_only=True, tag="end"):
    """The model finished normally; `finish_reason` says why (stop, length, ...)."""

    finish_reason: str = "stop"


class RouteServed(msgspec.Struct, frozen=True, kw_only=True, tag="route"):
    """Which configured route is answering and after how many attempts (for logs, not clients).

    Emitted by the routing layer right before the first text of a reply.
    """

    route: str
    provider: str
    model: str
    attempts: int


ChatEvent = TextDelta | ToolCallDelta | Usage | StreamEnd | RouteServed
"""Everything a `ChatModel` stream may yield; a well-formed stream ends with one `StreamEnd`."""


class Tool(msgspec.Struct, frozen=True, kw_only=True):
    """A function the model may call: its JSON Schema `parameters` as the client wrote them."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedTool(msgspec.Struct, frozen=True, kw_only=True):
    """`tool_choice` naming the one function the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedTool


class ResponseFormat(msgspec.Struct, frozen=True, kw_only=True):
    """Structured output: any JSON object, or one that follows `json_schema`."""

    type: Literal["json_object", "json_schema"]
    name: str | None = None
    json_schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class GenerationOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Per-request knobs passed to the model.

    `None` (or empty) means "not asked for": the adapter sends nothing for it, so the vendor's
    own default applies (an API that has defaults of its own, like `/chat`'s MODEL_TEMPERATURE,
    fills them in before). Every field is honoured by every adapter or refused by it with a
    `ProviderBadRequest`-like error naming it; none is silently dropped.
    """

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
