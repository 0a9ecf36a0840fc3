"""The streaming response that carries SSE: keep-alives, the client leaving, the time limit.

This is the hot path, so it costs little per request and nothing per chunk but the ASGI send:

* The body is relayed in the request's own task. One helper task waits on ASGI `receive()`
  for the client's disconnect and cancels the relay, wherever it waits; uvicorn drops writes to
  a closed connection silently, so without it a reply nobody reads would run (and bill) to the
  end. The cancellation unwinds the body where it waits, which closes the upstream request.
* Keep-alive comments are written only while the first chunk is late: a timer (no task) is
  armed when the body starts and cancelled when the first chunk arrives; only if it fires does
  a task write the keep-alive, and the relay waits for that write before its own first one, so
  two writes never overlap.
* The whole body runs under the stream's one timer (`ActiveStream.time_limit`): when it fires
  (the total time limit, or the shutdown drain) the body is cut, a final `event: error` is
  written within `FINAL_WRITE_SECONDS`, and the stream's slots are released, whatever the
  client does.

Every `await` on the request path that really suspends costs a whole event-loop iteration, which
under load is the time it takes to relay hundreds of tokens; hence no task group, no task per
first event, and no `asyncio.wait`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send

from aura_agent.http.sse.control import FINAL_WRITE_SECONDS, ActiveStream
from aura_agent.http.sse.encoding import KEEPALIVE, LastChunk

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_END: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
_log = structlog.get_logger("aura_agent.stream")


def _body_event(chunk: bytes) -> HTTPResponseBodyEvent:
    """A chunk of the body; a `LastChunk` also ends the body (one write for both)."""
    return {"type": "http.response.body", "body": chunk, "more_body": type(chunk) is not LastChunk}


class DeferredStart:
    """Holds back a response's status line until its first chunk or its first keep-alive.

    Until then a failure the body raises leaves the response unstarted, so the framework still
    answers it as a real HTTP error (for the OpenAI API: 429 and friends, which the SDKs raise as
    `RateLimitError` etc.). When the first keep-alive is due the status goes out with `opening`
    instead of a comment (OpenAI's role chunk), and `committed` turns true at that moment, so the
    body knows to leave `opening` out of its first chunk and to report failures as events.
    """

    __slots__ = ("committed", "opening")

    def __init__(self, opening: bytes = KEEPALIVE) -> None:
        self.opening = opening
        self.committed = False


class SSEResponse(ASGIStreamingResponse):
    """`text/event-stream` response over an async iterator of already-encoded SSE bytes."""

    __slots__ = (
        "_active",
        "_body",
        "_client_left",
        "_deferred",
        "_keepalive_seconds",
        "_relaying",
        "_started",
    )

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        headers: dict[str, str],
        stream: ActiveStream,
        keepalive_seconds: float,
        deferred: DeferredStart | None = None,
    ) -> None:
        super().__init__(
            iterator=body,
            headers={**SSE_HEADERS, **headers},
            media_type="text/event-stream",
            status_code=200,
        )
        self._body = body
        self._active = stream
        self._keepalive_seconds = keepalive_seconds
        self._deferred = deferred
        self._started = deferred is None  # else: once `_start` has sent the status line
        self._relaying = False
        self._client_left = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        """Send the response; whatever happens, close the body and release the stream."""
        try:
            if self._deferred is None:
                await self.start_response(send=send)
            await self.send_body(send, receive)
        finally:
            try:
                aclose = getattr(self._body, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                await self._active.close()

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Relay the body in this task while a helper task watches for the client's disconnect.

        The watcher cancels this task only while the relay runs; that one cancellation is
        consumed here (`uncancel`), so nothing above sees it. A cancellation from anyone else
        (counted by `Task.cancelling`) still propagates, even when it coincides with ours.
        """
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        watcher = asyncio.get_running_loop().create_task(self._watch(receive, task))
        self._relaying = True
        try:
            await self._relay(send)
        except asyncio.CancelledError:
            if not self._client_left or task.uncancel() > cancelling:
                raise
        else:
            if self._client_left:  # our cancellation was swallowed below: rebalance the count
                task.uncancel()
        finally:
            self._relaying = False
            watcher.cancel()

    async def _watch(self, receive: Receive, relay: asyncio.Task[Any]) -> None:
        """Cancel `relay` when the client disconnects (only while it still relays)."""
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception as exc:  # the server cannot tell us; the time limit still applies
            _log.warning("disconnect_watch_failed", error=type(exc).__name__)
            return
        if self._relaying:
            self._client_left = True
            relay.cancel()

    async def _relay(self, send: Send) -> None:
        """The body and its end under the stream's timer; per chunk, only the write itself."""
        stream = self._active
        body = self._body
        unsent: bytes | None = None
        timer = stream.time_limit()
        try:
            async with timer:
                stream.started(timer)
                keepalives = _Keepalives(self, send)
                try:
                    unsent = await anext(body, None)
                except BaseException:
                    await keepalives.stop(abandon=True)
                    raise
                await keepalives.stop(abandon=False)
                if not self._started:
                    await self._start(send)
                chunk = unsent
                while chunk is not None:
                    await send(_body_event(chunk))
                    unsent = None
                    if type(chunk) is LastChunk:
                        return  # sent with the body's end; the body has nothing after it
                    chunk = unsent = await anext(body, None)
                await send(_END)
                return
        except TimeoutError:
            if not timer.expired():
                raise
        finally:
            stream.finished()
        await self._end_interrupted(send, stream.final_chunk(unsent))

    async def _end_interrupted(self, send: Send, last: bytes | None) -> None:
        """Close the cut body (no turn is saved), then write `last` and the end, briefly.

        A client that does not read gets `FINAL_WRITE_SECONDS`; then the response is left
        unfinished, and the server drops the connection.
        """
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()
        try:
            async with asyncio.timeout(FINAL_WRITE_SECONDS) as final:
                if not self._started:
                    await self._start(send)
                if last:
                    await send({"type": "http.response.body", "body": last, "more_body": True})
                await send(_END)
        except TimeoutError:
            if not final.expired():
                raise

    async def _start(self, send: Send) -> None:
        """Send the status line and headers of a deferred response."""
        await self.start_response(send=send)
        self._started = True


class _Keepalives:
    """Keep-alive comments while a body's first chunk is late.

    Armed, it is one timer; a task exists only while a keep-alive is being written, and the
    next one is timed from the end of that write.
    """

    __slots__ = ("_handle", "_loop", "_response", "_send", "_stopped", "_task")

    def __init__(self, response: SSEResponse, send: Send) -> None:
        self._response = response
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._handle = self._loop.call_later(response._keepalive_seconds, self._due)

    def _due(self) -> None:
        if self._stopped:
            return
        deferred = self._response._deferred
        if deferred is not None and not deferred.committed:
            # Decided here, synchronously, so that the body sees the same answer as the writer.
            deferred.committed = True
            chunk = deferred.opening
        else:
            chunk = KEEPALIVE
        self._task = self._loop.create_task(self._write(chunk))

    async def _write(self, chunk: bytes) -> None:
        response = self._response
        if not response._started:
            await response._start(self._send)
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not self._stopped:
            self._handle = self._loop.call_later(response._keepalive_seconds, self._due)

    async def stop(self, *, abandon: bool) -> None:
        """No keep-alive is written once this returns.

        A keep-alive being written is awaited (the first chunk must follow it), unless the relay
        is failing (`abandon`: cut by its timer, or cancelled): then it may be stuck on a client
        that does not read, so it is cancelled, and only its end is awaited. Awaiting the task
        directly also hands a cancellation of the relay on to it.
        """
        self._stopped = True
        self._handle.cancel()
        task = self._task
        if task is None:
            return
        if not task.done():
            if not abandon:
                await task
                return
            task.cancel()
            await asyncio.wait((task,))
        if not task.cancelled() and (exc := task.exception()) is not None and not abandon:
            raise exc
