"""The domain's event stream in OpenAI's formats: `chat.completion.chunk` SSE, or one object.

The streamed form is the hot path. Every chunk of one stream shares its envelope (id, created,
model), so `ChunkEncoder` encodes it once; a token then costs one JSON string encode and a few
byte concatenations. The canonical log line and the metrics read the `RequestRecord`, which is
filled as events pass (once per request for everything but the token counter).

A failure before the first token that arrives while the response is not committed yet becomes
a real HTTP error (see `chunk_stream`); once the stream has begun, it is a final
`data: {"error": {...}}` event, which the OpenAI SDKs raise as `APIError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

import msgspec
import structlog

from aura_agent.domain.errors import AuraError, ChatModelError, ProviderStreamError
from aura_agent.domain.models import ChatEvent, RouteServed, StreamEnd, TextDelta, Usage
from aura_agent.http.openai_dto import (
    ErrorBody,
    ErrorDetail,
    OpenAIError,
    completion_usage,
    error_for,
)
from aura_agent.http.request_context import RequestRecord
from aura_agent.http.sse import LastChunk
from aura_agent.http.sse_response import DeferredStart

_log = structlog.get_logger("aura_agent.stream")
_encode: Final = msgspec.json.Encoder().encode
DONE_FRAME: Final = b"data: [DONE]\n\n"
_INTERNAL_ERROR: Final = ErrorDetail(
    message="the reply failed because of an internal error", type="server_error"
)


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


def note_route(record: RequestRecord, event: RouteServed) -> None:
    """Which route served, for the log line and the fallback/attempt metrics."""
    record.route = event.route
    record.provider = event.provider
    record.model = event.model
    record.attempts = event.attempts


def note_failure(record: RequestRecord, exc: AuraError) -> None:
    """The outcome of a failed request, for the log line and the upstream-error metric."""
    record.outcome = f"error:{type(exc).__name__}"
    record.error = str(exc)
    if isinstance(exc, ChatModelError):
        record.error_provider = exc.provider
        if exc.status is not None:
            record.error = f"{exc} (upstream status {exc.status})"


async def chunk_stream(
    events: AsyncGenerator[ChatEvent, None],
    encoder: ChunkEncoder,
    *,
    start: DeferredStart,
    record: RequestRecord,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """Encode `events` as `chat.completion.chunk` events ending with `[DONE]` or an error.

    Meant for an `SSEResponse` that defers its start with `start` (whose opening is the role
    chunk): a failure of the first event while the response is not committed is raised as the
    matching `OpenAIError`, so it is answered as a real HTTP status. Once committed (the first
    keep-alive period passed, and the role chunk went out then), failures are error events.

    As for `/chat`, tokens flagged `more` are written together with the next one, and nothing
    ever waits for a token.
    """
    held: list[bytes] = []
    try:
        try:
            event = await anext(events)
        except StopAsyncIteration:
            raise ProviderStreamError(
                "the model returned nothing", provider=record.provider or "unknown"
            ) from None
        except AuraError as exc:
            if start.committed:
                raise
            note_failure(record, exc)
            raise error_for(exc) from exc
        if not start.committed:
            held.append(encoder.role)
        finish_reason = "stop"
        usage: Usage | None = None
        while True:
            if type(event) is TextDelta:
                if event.text:
                    if record.ttft_ms is None:
                        record.ttft_ms = record.elapsed_ms()
                    record.tokens_relayed += 1
                    held.append(encoder.content(event.text))
                    if not event.more:
                        yield held[0] if len(held) == 1 else b"".join(held)
                        held.clear()
            elif type(event) is Usage:
                usage = event
                record.note_usage(event)
            elif type(event) is StreamEnd:
                finish_reason = event.finish_reason
                record.outcome = "completed"
            elif type(event) is RouteServed:
                note_route(record, event)
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
        held.append(encoder.finish(finish_reason))
        if include_usage and usage is not None:
            held.append(encoder.usage(usage))
        held.append(DONE_FRAME)
        yield LastChunk(b"".join(held))
    except OpenAIError:
        raise  # the failure before the response started, raised above
    except AuraError as exc:
        note_failure(record, exc)
        yield LastChunk(b"".join(held) + error_frame(error_for(exc).error))
    except asyncio.CancelledError:
        record.outcome = "client_disconnected"
        raise
    except Exception:
        record.outcome = "error:internal"
        _log.exception("stream_failed", request_id=record.request_id)
        yield LastChunk(b"".join(held) + error_frame(_INTERNAL_ERROR))
    finally:
        await events.aclose()  # a no-op once it ended; else releases the upstream request


class Completion(msgspec.Struct, kw_only=True, frozen=True):
    """A whole reply, gathered for a non-streamed request."""

    text: str
    finish_reason: str
    usage: Usage | None


async def collect_completion(
    events: AsyncGenerator[ChatEvent, None], record: RequestRecord
) -> Completion:
    """Gather the reply; a failure at any point raises the matching `OpenAIError`."""
    parts: list[str] = []
    finish_reason = "stop"
    usage: Usage | None = None
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                if type(event) is TextDelta:
                    if event.text:
                        if record.ttft_ms is None:
                            record.ttft_ms = record.elapsed_ms()
                        record.tokens_relayed += 1
                        parts.append(event.text)
                elif type(event) is Usage:
                    usage = event
                    record.note_usage(event)
                elif type(event) is StreamEnd:
                    finish_reason = event.finish_reason
                    record.outcome = "completed"
                elif type(event) is RouteServed:
                    note_route(record, event)
    except AuraError as exc:
        note_failure(record, exc)
        raise error_for(exc) from exc
    except asyncio.CancelledError:
        record.outcome = "client_disconnected"
        raise
    return Completion(text="".join(parts), finish_reason=finish_reason, usage=usage)
