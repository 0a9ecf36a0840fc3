"""The streaming response that carries SSE, closing its event source however the stream ends.

Litestar's streaming response cancels the body task when the client disconnects, but an event
generator suspended at a `yield` would then only be closed by the garbage collector; closing it
here releases the upstream request at once (providers bill until it is closed).

With an `ActiveStream`, the whole body runs under the stream's one timer: when it fires (the
total time limit, or the shutdown drain) the body is cut, a final `event: error` is written
within `FINAL_WRITE_SECONDS`, and the stream's slots are released, whatever the client does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from anyio import CancelScope, create_task_group, move_on_after
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import HTTPResponseBodyEvent, Receive, Scope, Send

from aura_agent.http.stream_control import FINAL_WRITE_SECONDS, ActiveStream

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
_END: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}


class SSEResponse(ASGIStreamingResponse):
    """`text/event-stream` response over an async iterator of already-encoded SSE bytes."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        headers: dict[str, str],
        stream: ActiveStream | None = None,
    ) -> None:
        super().__init__(
            iterator=body,
            headers={**SSE_HEADERS, **headers},
            media_type="text/event-stream",
            status_code=200,
        )
        self._body = body
        self._active = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response; whatever happens, close the generator and release the stream."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._active is not None:
                await self._active.close()

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Relay the body while listening for the client's disconnect (which cancels it)."""
        active = self._active
        if active is None:
            await super().send_body(send, receive)
            return
        async with create_task_group() as task_group:
            task_group.start_soon(self._relay, send, active, task_group.cancel_scope)
            await self._listen_for_disconnect(cancel_scope=task_group.cancel_scope, receive=receive)

    async def _relay(self, send: Send, stream: ActiveStream, cancel_scope: CancelScope) -> None:
        """The body and its end under the stream's timer; per chunk, only the write itself."""
        unsent: bytes | None = None
        timer = stream.time_limit()
        try:
            async with timer:
                stream.started(timer)
                async for chunk in self._body:
                    unsent = chunk
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    unsent = None
                await send(_END)
                return
        except TimeoutError:
            if not timer.expired():
                raise
        finally:
            stream.finished()
        await self._end_interrupted(send, stream.final_chunk(unsent), cancel_scope)

    async def _end_interrupted(
        self, send: Send, last: bytes | None, cancel_scope: CancelScope
    ) -> None:
        """Close the cut body (no turn is saved), then write `last` and the end, briefly."""
        aclose = getattr(self._body, "aclose", None)
        if aclose is not None:
            await aclose()
        with move_on_after(FINAL_WRITE_SECONDS) as final:
            if last:
                await send({"type": "http.response.body", "body": last, "more_body": True})
            await send(_END)
        if final.cancelled_caught:
            # The client is not reading: give up on it. Ending the task group makes the server
            # close the connection, and the stream's slots are released on the way out.
            cancel_scope.cancel()
