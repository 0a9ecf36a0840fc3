"""The domain's event stream in OpenAI's formats: `chat.completion.chunk` SSE, or one object.

The streamed form is the hot path: per token one type check, the record's counter and one
chunk encode (`ChunkEncoder`). The canonical log line and the metrics read the `RequestRecord`,
which learns from the events as they pass.

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

from aura_agent.domain.errors import AuraError, ProviderStreamError
from aura_agent.domain.models import ChatEvent, TextDelta, ToolCall, ToolCallDelta, Usage
from aura_agent.http.openai.chunks import DONE_FRAME, ChunkEncoder, error_frame
from aura_agent.http.openai.errors import ErrorDetail, OpenAIError, error_for
from aura_agent.http.record import RequestRecord
from aura_agent.http.sse.encoding import LastChunk
from aura_agent.http.sse.response import DeferredStart

_log = structlog.get_logger("aura_agent.stream")
_INTERNAL_ERROR: Final = ErrorDetail(
    message="the reply failed because of an internal error", type="server_error"
)


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
            record.note_failure(exc)
            raise error_for(exc) from exc
        if not start.committed:
            held.append(encoder.role)
        while True:
            if type(event) is TextDelta:
                if event.text:
                    record.note_token()
                    held.append(encoder.content(event.text))
                    if not event.more:
                        yield held[0] if len(held) == 1 else b"".join(held)
                        held.clear()
            elif type(event) is ToolCallDelta:
                record.note_token()
                held.append(encoder.tool_call(event))
                yield b"".join(held)
                held.clear()
            else:
                record.note(event)
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
        held.append(encoder.finish(record.finish_reason))
        if include_usage and record.usage is not None:
            held.append(encoder.usage(record.usage))
        held.append(DONE_FRAME)
        yield LastChunk(b"".join(held))
    except OpenAIError:
        raise  # the failure before the response started, raised above
    except AuraError as exc:
        record.note_failure(exc)
        yield LastChunk(b"".join(held) + error_frame(error_for(exc).error))
    except asyncio.CancelledError:
        record.note_disconnect()
        raise
    except Exception:
        record.note_internal_failure()
        _log.exception("stream_failed", request_id=record.request_id)
        yield LastChunk(b"".join(held) + error_frame(_INTERNAL_ERROR))
    finally:
        await events.aclose()  # a no-op once it ended; else releases the upstream request


class Completion(msgspec.Struct, kw_only=True, frozen=True):
    """A whole reply, gathered for a non-streamed request."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    usage: Usage | None


async def collect_completion(
    events: AsyncGenerator[ChatEvent, None], record: RequestRecord
) -> Completion:
    """Gather the reply; a failure at any point raises the matching `OpenAIError`."""
    parts: list[str] = []
    calls = _ToolCalls()
    try:
        async with contextlib.aclosing(events):
            async for event in events:
                if type(event) is TextDelta:
                    if event.text:
                        record.note_token()
                        parts.append(event.text)
                elif type(event) is ToolCallDelta:
                    record.note_token()
                    calls.add(event)
                else:
                    record.note(event)
    except AuraError as exc:
        record.note_failure(exc)
        raise error_for(exc) from exc
    except asyncio.CancelledError:
        record.note_disconnect()
        raise
    return Completion(
        text="".join(parts),
        tool_calls=calls.assembled(),
        finish_reason=record.finish_reason,
        usage=record.usage,
    )


class _ToolCalls:
    """Streamed tool-call pieces put back together, by index, in the order calls began."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[list[str], list[str]]] = {}  # index -> ([id, name], args)

    def add(self, delta: ToolCallDelta) -> None:
        head, arguments = self._calls.setdefault(delta.index, (["", ""], []))
        if delta.id is not None:
            head[0] = delta.id
        if delta.name is not None:
            head[1] += delta.name
        arguments.append(delta.arguments)

    def assembled(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=head[0], name=head[1], arguments="".join(arguments))
            for head, arguments in self._calls.values()
        )
