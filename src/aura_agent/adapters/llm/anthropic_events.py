"""The events of Anthropic's streaming Messages API, and their translation to domain events.

A stream is `message_start` (input usage), then per content block `content_block_start`,
`content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason and
cumulative usage) and `message_stop`; `ping` and `error` may come at any time, and new event and
delta types may be added, so anything unknown is ignored. The SSE `event:` name always repeats
the JSON `type`, so only the `data:` payload is read.

One flat Struct covers every event type: fields an event does not have stay None, unknown
fields are skipped by the decoder, and no tagged union is needed (which would reject unknown
types). Structs are `gc=False` for a cheaper per-token decode.
"""

from __future__ import annotations

from typing import Final

import msgspec

from aura_agent.domain.models import ChatEvent, StreamEnd, TextDelta, Usage

__all__ = [
    "EVENT_DECODER",
    "AnthropicStreamParser",
    "AnthropicUsage",
    "ContentBlock",
    "EventDelta",
    "EventError",
    "StartedMessage",
    "StreamError",
    "StreamEvent",
    "finish_reason",
]

# Anthropic stop reasons in the OpenAI names the rest of the service uses.
_FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicUsage(msgspec.Struct, frozen=True, gc=False):
    """Token counts; `input_tokens` excludes the cached part of the prompt."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class StartedMessage(msgspec.Struct, frozen=True, gc=False):
    """The empty message of `message_start`; only its usage matters."""

    usage: AnthropicUsage | None = None


class ContentBlock(msgspec.Struct, frozen=True, gc=False):
    """The block a `content_block_start` opens (text, thinking, tool_use, ...)."""

    type: str | None = None
    text: str | None = None


class EventDelta(msgspec.Struct, frozen=True, gc=False):
    """A block delta (`text_delta`, `thinking_delta`, `input_json_delta`, ...) or a message delta.

    Both kinds share the field name `delta`; each uses its own fields of this Struct.
    """

    type: str | None = None
    text: str | None = None
    stop_reason: str | None = None


class EventError(msgspec.Struct, frozen=True, gc=False):
    """The `error` object of an `error` event: a kind (`overloaded_error`, ...) and a message."""

    type: str | None = None
    message: str | None = None


class StreamEvent(msgspec.Struct, frozen=True, gc=False):
    """One `data:` payload of a Messages stream, whatever its type."""

    type: str = ""
    message: StartedMessage | None = None
    content_block: ContentBlock | None = None
    delta: EventDelta | None = None
    usage: AnthropicUsage | None = None
    error: EventError | None = None


EVENT_DECODER: Final = msgspec.json.Decoder(StreamEvent)
"""Built once: a typed msgspec decoder is reused for every event of every stream."""


class StreamError(Exception):
    """The stream reported an `error` event; the adapter maps its kind to a domain error."""

    def __init__(self, kind: str | None, message: str | None) -> None:
        super().__init__(message or "")
        self.kind = kind
        self.message = message


def finish_reason(stop_reason: str) -> str:
    """An Anthropic stop reason in OpenAI's words (`end_turn` -> `stop`); unknown ones unchanged."""
    return _FINISH_REASONS.get(stop_reason, stop_reason)


class AnthropicStreamParser:
    """Reads the payloads of one stream; keeps the usage spread over start and delta events.

    Calling it returns the domain events of a payload, or None for `message_stop`. Raises
    `msgspec.DecodeError` for a malformed payload and `StreamError` for an `error` event.
    """

    __slots__ = ("_cache_read", "_cache_write", "_input", "_output")

    def __init__(self) -> None:
        self._input: int | None = None
        self._output: int | None = None
        self._cache_write: int | None = None
        self._cache_read: int | None = None

    def __call__(self, payload: str) -> list[ChatEvent] | None:
        event = EVENT_DECODER.decode(payload)
        kind = event.type
        if kind == "content_block_delta":  # the per-token case first
            delta = event.delta
            if delta is not None and delta.type == "text_delta" and delta.text:
                return [TextDelta(delta.text)]
            return []  # thinking, signature, tool-input deltas: not part of the reply text
        if kind == "message_delta":
            events: list[ChatEvent] = []
            if event.delta is not None and event.delta.stop_reason:
                events.append(StreamEnd(finish_reason=finish_reason(event.delta.stop_reason)))
            if event.usage is not None:
                self._add(event.usage)
                events.append(self.usage())
            return events
        if kind == "message_start":
            if event.message is not None and event.message.usage is not None:
                self._add(event.message.usage)
            return []
        if kind == "message_stop":
            return None
        if kind == "error":
            error = event.error
            raise StreamError(error.type, error.message) if error else StreamError(None, None)
        if kind == "content_block_start":
            block = event.content_block  # documented as empty, but take text if it ever is not
            if block is not None and block.type == "text" and block.text:
                return [TextDelta(block.text)]
        return []  # ping, content_block_stop, and event types newer than this code

    def _add(self, usage: AnthropicUsage) -> None:
        """Counts are cumulative: a later report replaces the counts it carries."""
        if usage.input_tokens is not None:
            self._input = usage.input_tokens
        if usage.output_tokens is not None:
            self._output = usage.output_tokens
        if usage.cache_creation_input_tokens is not None:
            self._cache_write = usage.cache_creation_input_tokens
        if usage.cache_read_input_tokens is not None:
            self._cache_read = usage.cache_read_input_tokens

    def usage(self) -> Usage:
        """The domain `Usage` so far.

        `prompt_tokens` is the whole prompt as OpenAI counts it: Anthropic's `input_tokens`
        plus the tokens written to and read from the prompt cache (Anthropic reports those
        apart from `input_tokens`); `cached_tokens` is the part read from the cache.
        """
        prompt = (self._input or 0) + (self._cache_write or 0) + (self._cache_read or 0)
        completion = self._output or 0
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=self._cache_read,
        )
