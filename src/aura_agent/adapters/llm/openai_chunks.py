"""The OpenAI Chat Completions stream chunk, as OpenAI-compatible APIs send it, and its translation.

Every field is optional and unknown fields are ignored, because each compatible server adds or
omits its own. The Structs are `gc=False`: decoded chunks never form reference cycles, and
skipping garbage-collector tracking makes the per-token decode cheaper.
"""

from __future__ import annotations

import msgspec

from aura_agent.domain.models import ChatEvent, StreamEnd, TextDelta, ToolCallDelta, Usage

__all__ = [
    "CHUNK_DECODER",
    "ChatCompletionChunk",
    "ChunkChoice",
    "ChunkDelta",
    "ChunkError",
    "ChunkFunction",
    "ChunkToolCall",
    "ChunkUsage",
    "CompletionTokensDetails",
    "InBandError",
    "PromptTokensDetails",
    "chunk_events",
    "usage_event",
]


class ChunkFunction(msgspec.Struct, frozen=True, gc=False):
    """The function of a streamed tool call: its name first, then argument fragments."""

    name: str | None = None
    arguments: str | None = None


class ChunkToolCall(msgspec.Struct, frozen=True, gc=False):
    """One piece of a tool call; `index` says which call of the reply it continues."""

    index: int = 0
    id: str | None = None
    function: ChunkFunction | None = None


class ChunkDelta(msgspec.Struct, frozen=True, gc=False):
    """The new part of the message; `content` is null in role-only or tool-call chunks."""

    content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(msgspec.Struct, frozen=True, gc=False):
    """One choice of a chunk; we only ever ask for one."""

    delta: ChunkDelta | None = None
    finish_reason: str | None = None


class CompletionTokensDetails(msgspec.Struct, frozen=True, gc=False):
    """Breakdown of completion tokens; only reasoning tokens matter to us."""

    reasoning_tokens: int | None = None


class PromptTokensDetails(msgspec.Struct, frozen=True, gc=False):
    """Breakdown of prompt tokens; only cache hits matter to us."""

    cached_tokens: int | None = None


class ChunkUsage(msgspec.Struct, frozen=True, gc=False):
    """Token counts, usually sent once in the last chunk (often one with no choices)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    prompt_tokens_details: PromptTokensDetails | None = None


class ChunkError(msgspec.Struct, frozen=True, gc=False):
    """An error reported inside a successful (HTTP 200) stream.

    `code` is an HTTP-like number on some servers and a word (`server_error`) on others.
    """

    message: str | None = None
    code: int | str | None = None


class ChatCompletionChunk(msgspec.Struct, frozen=True, gc=False):
    """One `data:` payload of a Chat Completions stream."""

    choices: list[ChunkChoice] | None = None
    usage: ChunkUsage | None = None
    error: ChunkError | None = None


CHUNK_DECODER = msgspec.json.Decoder(ChatCompletionChunk)
"""Built once: a typed msgspec decoder is reused for every chunk of every stream."""


class InBandError(Exception):
    """The stream itself reported a failure; the adapter maps it to a domain error.

    Kept vendor-neutral on purpose: how a code is worded for users is the adapter's business.
    """

    def __init__(self, message: str | None, code: int | str | None) -> None:
        super().__init__(message or "")
        self.message = message
        self.code = code


def chunk_events(chunk: ChatCompletionChunk) -> list[ChatEvent]:
    """Translate one chunk into domain events, in stream order.

    Returns a `TextDelta` per non-empty content delta, a `ToolCallDelta` per tool-call piece, a
    `Usage` when the chunk reports one, and a `StreamEnd` when a choice finished. Raises
    `InBandError` for a top-level `error` object or a `finish_reason` of `error`, whichever the
    server used.
    """
    if chunk.error is not None:
        raise InBandError(chunk.error.message, chunk.error.code)
    events: list[ChatEvent] = []
    if chunk.choices:
        for choice in chunk.choices:
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    events.append(TextDelta(delta.content))
                if delta.tool_calls:
                    events.extend(_tool_call_deltas(delta.tool_calls))
            reason = choice.finish_reason
            if reason:
                if reason == "error":
                    raise InBandError(None, None)
                events.append(StreamEnd(finish_reason=reason))
    if chunk.usage is not None:
        events.append(usage_event(chunk.usage))
    return events


def _tool_call_deltas(calls: list[ChunkToolCall]) -> list[ToolCallDelta]:
    deltas = []
    for call in calls:
        function = call.function
        deltas.append(
            ToolCallDelta(
                index=call.index,
                id=call.id,
                name=function.name if function is not None else None,
                arguments=(function.arguments or "") if function is not None else "",
            )
        )
    return deltas


def usage_event(usage: ChunkUsage) -> Usage:
    """The domain `Usage` for a wire usage object; absent counts become 0 (or None for details)."""
    prompt = usage.prompt_tokens or 0
    completion = usage.completion_tokens or 0
    details = usage.completion_tokens_details
    prompt_details = usage.prompt_tokens_details
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=usage.total_tokens or prompt + completion,
        reasoning_tokens=details.reasoning_tokens if details is not None else None,
        cached_tokens=prompt_details.cached_tokens if prompt_details is not None else None,
    )
