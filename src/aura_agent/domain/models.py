"""Chat messages and the events a model stream produces.

Frozen msgspec Structs: cheap to create on the hot path, hashable, and encodable without adapters.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    """Who said a message; values match the Chat Completions wire names on purpose."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation.

    `usage` is what the provider reported for an assistant reply (None for user messages and
    for replies stored before usage was kept). Defaults are not encoded, so a stored message
    without usage keeps exactly its old bytes, and older readers ignore the extra field.
    """

    role: Role
    content: str
    usage: Usage | None = None


class TextDelta(msgspec.Struct, frozen=True, tag="text"):
    """A piece of the reply's text, in the order the model produced it.

    `more` is a hint for relays: True when the producer already holds the next event (several
    tokens arrived in one network read), so they can be written downstream together. It never
    asks anyone to wait: a token with `more=False` must be flushed at once.
    """

    text: str
    more: bool = False


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


ChatEvent = TextDelta | Usage | StreamEnd | RouteServed
"""Everything a `ChatModel` stream may yield; a well-formed stream ends with one `StreamEnd`."""


class GenerationOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Per-request knobs passed to the model; `None` means the model's configured default."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
