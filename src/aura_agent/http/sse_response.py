"""The streaming response that carries SSE, closing its event source however the stream ends.

Litestar's streaming response cancels the body task when the client disconnects, but an event
generator suspended at a `yield` would then only be closed by the garbage collector; closing it
here releases the upstream request at once (providers bill until it is closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class SSEResponse(ASGIStreamingResponse):
    """`text/event-stream` response over an async iterator of already-encoded SSE bytes."""

    def __init__(self, body: AsyncIterator[bytes], *, headers: dict[str, str]) -> None:
        super().__init__(
            iterator=body,
            headers={**SSE_HEADERS, **headers},
            media_type="text/event-stream",
            status_code=200,
        )
        self._body = body

    async def send_body(self, send: Send, receive: Receive) -> None:
        """Send the events; whatever happens, close the generator that produces them."""
        try:
            await super().send_body(send, receive)
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
