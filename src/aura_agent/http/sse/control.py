"""The streams an app instance is serving: its global cap, each stream's total time limit, and
the drain that ends them cleanly at shutdown.

Every SSE reply is an `ActiveStream` from admission until its response is over, however it ends
(done, error, client gone, time limit, shutdown). Costs are per request only: one set insert and
one timer (`asyncio.timeout`) per stream; nothing runs per token. Stopping a stream reschedules
its timer to "now", so the same path ends a stream that ran too long and one still running at
shutdown: `SSEResponse` then writes a final `event: error` and closes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Final

import structlog

from aura_agent.http.record import RequestRecord
from aura_agent.http.sse.encoding import encode_error

SHUTDOWN_MESSAGE: Final = "the server is shutting down; please retry"
FINAL_WRITE_SECONDS: Final = 2.0
"""How long an interrupted stream may take to write its last event before the connection is
dropped: a client that does not read cannot hold a stream (or its slots) past its time limit."""
_DRAIN_POLL_SECONDS: Final = 0.05
_log = structlog.get_logger("aura_agent.streams")

Release = Callable[[], Awaitable[None]]
FinalError = Callable[[str, bool], bytes]
"""Encodes the event that ends a cut stream: (message safe to show, whether it is the shutdown)."""


def _sse_error(message: str, _shutdown: bool) -> bytes:
    return encode_error(message)


class ActiveStream:
    """One admitted stream: its record, its time limit, and what to give back when it ends."""

    __slots__ = (
        "__weakref__",
        "_closed",
        "_registry",
        "_releases",
        "_timer",
        "final_error",
        "record",
        "stop_message",
    )

    def __init__(self, registry: StreamRegistry, record: RequestRecord) -> None:
        self._registry = registry
        self.record = record
        self.final_error: FinalError = _sse_error
        """`event: error` for `/chat`; the OpenAI API writes its own error object instead."""
        self._releases: list[Release] = []
        self._timer: asyncio.Timeout | None = None
        self._closed = False
        self.stop_message: str | None = None

    @property
    def total_timeout(self) -> float:
        """UPSTREAM_TOTAL_TIMEOUT: the longest this stream may run."""
        return self._registry.total_timeout

    def on_close(self, release: Release) -> None:
        """Run `release` (e.g. give a tenant's stream slot back) when the stream is over."""
        self._releases.append(release)

    def time_limit(self) -> asyncio.Timeout:
        """The stream's one timer; enter it around the whole body and pass it to `started`."""
        return asyncio.timeout(self.total_timeout)

    def started(self, timer: asyncio.Timeout) -> None:
        """The body is running under `timer`; a stop requested earlier takes effect now."""
        self._timer = timer
        if self.stop_message is not None:
            self._expire()

    def finished(self) -> None:
        """The body left its timer; stopping it now is a no-op."""
        self._timer = None

    def stop(self, message: str) -> None:
        """End the stream with its final error (`event: error`) carrying `message` (safe to
        show)."""
        if self.stop_message is None:
            self.stop_message = message
        self._expire()

    def _expire(self) -> None:
        timer = self._timer
        if timer is not None and not timer.expired():
            timer.reschedule(asyncio.get_running_loop().time())

    def final_chunk(self, unsent: bytes | None) -> bytes | None:
        """What to write once the timer fired: `unsent` is the chunk whose write it cut short.

        A body that had already ended by itself (its reply saved and `done` encoded, or its
        own error) only needs that chunk delivered; otherwise the reply is cut, unsaved, and
        ends with the reason.
        """
        record = self.record
        if record.outcome is not None and record.outcome != "client_disconnected":
            return unsent
        message = record.note_cut(self.stop_message, self.total_timeout)
        return (unsent or b"") + self.final_error(message, self.stop_message is not None)

    async def close(self) -> None:
        """Leave the registry and run the releases, once; a cancelled caller cannot skip them."""
        if self._closed:
            return
        self._closed = True
        self._registry.discard(self)
        if not self._releases:
            return
        pending = [release() for release in self._releases]
        releases = asyncio.gather(*pending, return_exceptions=True)
        for result in await asyncio.shield(releases):
            if isinstance(result, BaseException):
                _log.error(
                    "stream_release_failed",
                    request_id=self.record.request_id,
                    error=type(result).__name__,
                )


class StreamRegistry:
    """The active streams of one app instance; `MAX_CONCURRENT_STREAMS` caps them (0: no cap)."""

    def __init__(self, *, max_streams: int, total_timeout: float, grace_seconds: float) -> None:
        self.max_streams = max_streams
        self.total_timeout = total_timeout
        self.grace_seconds = grace_seconds
        self.closing = False
        self._active: set[ActiveStream] = set()
        _REGISTRIES.add(self)

    def __len__(self) -> int:
        return len(self._active)

    def open(self, record: RequestRecord) -> ActiveStream | None:
        """Admit a stream, or None at the cap or once the drain has ended the others."""
        if self.closing or (self.max_streams and len(self._active) >= self.max_streams):
            return None
        stream = ActiveStream(self, record)
        self._active.add(stream)
        return stream

    def discard(self, stream: ActiveStream) -> None:
        """Forget a stream that is over."""
        self._active.discard(stream)

    def stop_all(self, message: str) -> int:
        """Refuse new streams and end every active one with `message`; returns how many."""
        self.closing = True
        active = list(self._active)
        for stream in active:
            stream.stop(message)
        return len(active)


_REGISTRIES: weakref.WeakSet[StreamRegistry] = weakref.WeakSet()


def active_streams() -> int:
    """Streams open in this process, across every app instance."""
    return sum(len(registry) for registry in list(_REGISTRIES))


async def drain_streams() -> int:
    """At shutdown: let this process's streams finish within SHUTDOWN_GRACE_SECONDS, then end
    the rest with `event: error` (SHUTDOWN_MESSAGE). Returns how many were ended.

    Call it once new connections are refused; the caller then waits for the responses to go out.
    """
    registries = list(_REGISTRIES)
    if not registries:
        return 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(registry.grace_seconds for registry in registries)
    if active_streams():
        _log.info("draining_streams", active=active_streams())
    # Polling (bounded by the grace period) runs once, at shutdown; nothing per stream.
    while active_streams() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_DRAIN_POLL_SECONDS)
    stopped = sum(registry.stop_all(SHUTDOWN_MESSAGE) for registry in registries)
    if stopped:
        _log.warning("streams_ended_by_shutdown", count=stopped)
    return stopped
