"""Turns the domain's event stream into SSE bytes: tokens, `done`, or `error`.

This is the hot path. Per token it does one type check, one encode and one yield; everything
else (logging, usage) happens once per request. Keep-alives while the model has not started are
written by `SSEResponse`, which owns the connection and its timing: a generator cannot yield
while it awaits the first event, and waiting for that event in a task of its own would cost a
task and an event-loop iteration on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import structlog

from aura_agent.domain.errors import AuraError, ProviderStreamError
from aura_agent.domain.models import ChatEvent, StreamEnd, TextDelta
from aura_agent.http.chat.usage import encode_usage_event
from aura_agent.http.record import RequestRecord
from aura_agent.http.sse.encoding import DONE, LastChunk, encode_data, encode_error

_log = structlog.get_logger("aura_agent.stream")
_INTERNAL_ERROR = "the reply failed because of an internal error"


def _encode_event(event: ChatEvent, record: RequestRecord) -> bytes | None:
    """SSE bytes for one event, or None when the event is not sent (usage, empty text)."""
    if type(event) is TextDelta:
        if not event.text:
            return None
        record.note_token()
        return encode_data(event.text)
    record.note(event)
    if type(event) is StreamEnd:
        if record.include_usage and record.usage is not None:
            return encode_usage_event(record.usage) + DONE
        return DONE
    return None


async def sse_body(
    events: AsyncGenerator[ChatEvent, None], *, record: RequestRecord
) -> AsyncIterator[bytes]:
    """Encode `events` as the downstream SSE stream, ending with `done` or `error`.

    Tokens flagged `more` (the next one is already in hand) are held and written with the next,
    so one network read upstream costs one write downstream; nothing ever waits for a token.
    Every `anext(events)` runs in the task that iterates this body (the relay's), so a client
    leaving cancels the upstream read where it waits, which closes the upstream request.
    """
    held: list[bytes] = []
    try:
        async with contextlib.aclosing(events):
            try:
                event = await anext(events)
            except StopAsyncIteration:
                raise ProviderStreamError(
                    "the model returned nothing", provider=record.provider or "unknown"
                ) from None
            while True:
                chunk = _encode_event(event, record)
                if chunk is not None:
                    if (type(event) is TextDelta and event.more) or type(event) is StreamEnd:
                        held.append(chunk)  # `done` waits to be sent with the body's end
                    elif held:
                        held.append(chunk)
                        yield b"".join(held)
                        held.clear()
                    else:
                        yield chunk
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
            if held:
                yield LastChunk(b"".join(held))
    except AuraError as exc:
        record.note_failure(exc)
        yield LastChunk(b"".join(held) + encode_error(str(exc)))
    except asyncio.CancelledError:
        record.note_disconnect()
        raise
    except Exception:
        record.note_internal_failure()
        _log.exception("stream_failed", request_id=record.request_id)
        yield LastChunk(b"".join(held) + encode_error(_INTERNAL_ERROR))
