"""`chat.completion.chunk` SSE frames, with each stream's constant parts encoded once.

Every chunk of one stream shares its envelope (id, created, model), so `ChunkEncoder` encodes it
once; a token then costs one JSON string encode and a few byte concatenations.
"""

from __future__ import annotations

from typing import Final

import msgspec

from aura_agent.domain.models import ToolCallDelta, Usage
from aura_agent.http.openai.errors import ErrorBody, ErrorDetail, OpenAIError
from aura_agent.http.openai.responses import completion_usage

_encode: Final = msgspec.json.Encoder().encode
DONE_FRAME: Final = b"data: [DONE]\n\n"


class _Envelope(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    object: str
    created: int
    model: str


class ChunkEncoder:
    """SSE frames of one completion stream, with the constant parts precomputed."""

    __slots__ = ("_content_head", "_content_tail", "_head", "_tail", "role")

    def __init__(self, completion_id: str, created: int, model: str, *, include_usage: bool):
        envelope = _encode(
            _Envelope(
                id=completion_id, object="chat.completion.chunk", created=created, model=model
            )
        )
        # `data: {"id":...,"model":"..."` + `,"choices":` ... + `}` (OpenAI sends `"usage":null`
        # in every chunk but the last one when usage was asked for).
        self._head = b"data: " + envelope[:-1] + b',"choices":'
        self._tail = (b',"usage":null}' if include_usage else b"}") + b"\n\n"
        self._content_head = self._head + b'[{"index":0,"delta":{"content":'
        self._content_tail = b'},"logprobs":null,"finish_reason":null}]' + self._tail
        self.role = (
            self._head
            + b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
            + b'"finish_reason":null}]'
            + self._tail
        )
        """The first chunk: the assistant role and empty content, as OpenAI starts a stream."""

    def content(self, text: str) -> bytes:
        """A chunk carrying one token."""
        return self._content_head + _encode(text) + self._content_tail

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        """A chunk carrying one piece of a tool call, in OpenAI's shape: the first piece of a
        call has its id, type and name, later ones only argument fragments."""
        function: dict[str, str] = {"arguments": delta.arguments}
        call: dict[str, object] = {"index": delta.index}
        if delta.id is not None:
            call["id"] = delta.id
            call["type"] = "function"
        if delta.name is not None:
            function = {"name": delta.name, **function}
        call["function"] = function
        return (
            self._head
            + b'[{"index":0,"delta":{"tool_calls":['
            + _encode(call)
            + b']},"logprobs":null,"finish_reason":null}]'
            + self._tail
        )

    def finish(self, finish_reason: str) -> bytes:
        """The last choice chunk: an empty delta and the finish reason."""
        return (
            self._head
            + b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
            + _encode(finish_reason)
            + b"}]"
            + self._tail
        )

    def usage(self, usage: Usage) -> bytes:
        """The usage chunk that ends a stream with `stream_options.include_usage`."""
        return self._head + b'[],"usage":' + _encode(completion_usage(usage)) + b"}\n\n"


def error_frame(error: ErrorDetail) -> bytes:
    """The event that ends a failed stream: OpenAI's error object as the data."""
    return b"data: " + _encode(ErrorBody(error=error)) + b"\n\n"


def final_error_frame(message: str, shutdown: bool) -> bytes:
    """The error that ends a stream cut by UPSTREAM_TOTAL_TIMEOUT or by the shutdown drain."""
    code = "service_unavailable" if shutdown else "timeout"
    return error_frame(ErrorDetail(message=message, type="server_error", code=code))


def cut_short_error(message: str, shutdown: bool) -> OpenAIError:
    """The same, as the HTTP error of a non-streamed completion (503 at shutdown, else 504)."""
    if shutdown:
        return OpenAIError(
            message,
            status_code=503,
            type="server_error",
            code="service_unavailable",
            headers={"Retry-After": "1"},
        )
    return OpenAIError(message, status_code=504, type="server_error", code="timeout")
