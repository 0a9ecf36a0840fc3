"""What every pytest-httpx mock of a streaming model API shares, whatever the vendor's format.

A scripted response body (`ScriptedByteStream`) that can pause, fail mid-way and tell whether the
client closed it, and a base class (`StreamingAPIMock`) that registers bodies and failures for
one endpoint and reads back what was sent. The vendor modules (`openrouter_mock`,
`anthropic_mock`) only add the bytes of their own event format.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx
import msgspec

if TYPE_CHECKING:
    from pytest_httpx import HTTPXMock

__all__ = [
    "SSE_HEADERS",
    "ScriptedByteStream",
    "Step",
    "StreamingAPIMock",
    "phrase",
    "rechunk",
    "sse_event",
]

SSE_HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

Step = bytes | float | BaseException
"""One step of a scripted body: bytes are sent, a number is a pause in seconds, an exception is
raised to the reader (e.g. `httpx.ReadTimeout`, `httpx.RemoteProtocolError`)."""


def sse_event(
    payload: Mapping[str, Any] | str, *, event: str | None = None, newline: str = "\n"
) -> bytes:
    """One SSE event carrying `payload` (JSON-encoded unless it is already a string).

    `event` adds an `event:` line, as Anthropic names its events.
    """
    data = payload if isinstance(payload, str) else msgspec.json.encode(payload).decode()
    nl = newline
    head = f"event: {event}{nl}" if event is not None else ""
    return (head + "".join(f"data: {line}{nl}" for line in data.split("\n")) + nl).encode()


class ScriptedByteStream(httpx.AsyncByteStream):
    """A response body played step by step (see `Step`), optionally repeating a tail forever.

    `closed` tells a test whether the client closed the body, i.e. released the upstream.
    """

    def __init__(self, steps: Iterable[Step], *, repeat: Sequence[Step] = ()) -> None:
        self._steps = list(steps)
        self._repeat = list(repeat)
        self.closed = False
        self.sent = 0  # bytes handed to the client so far

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._play(self._steps):
            yield chunk
        while self._repeat:
            async for chunk in self._play(self._repeat):
                yield chunk

    async def _play(self, steps: Iterable[Step]) -> AsyncIterator[bytes]:
        for step in steps:
            if isinstance(step, bytes):
                self.sent += len(step)
                yield step
            elif isinstance(step, BaseException):
                raise step
            else:
                await asyncio.sleep(step)

    async def aclose(self) -> None:
        self.closed = True


class StreamingAPIMock:
    """Registers answers of one streaming endpoint on an `httpx_mock`, one per request, in order."""

    def __init__(self, httpx_mock: HTTPXMock, *, url: str) -> None:
        self.httpx_mock = httpx_mock
        self.url = url

    @property
    def models_url(self) -> str:
        """The endpoint the adapter's `check()` probes."""
        return self.url.rstrip("/") + "/models"

    # -- bodies and failures any vendor can have ----------------------------------------------

    def add_sse(self, steps: Iterable[Step | str]) -> ScriptedByteStream:
        """A 200 event stream played exactly as given, for shapes the other helpers do not build.

        Strings and bytes are sent as chunks, numbers are pauses, exceptions are raised.
        """
        return self._add_steps([s.encode() if isinstance(s, str) else s for s in steps], repeat=())

    def add_timeout(self, kind: Literal["read", "connect"] = "read") -> None:
        """The request fails with an httpx timeout before any response."""
        exc: httpx.TimeoutException = (
            httpx.ReadTimeout("timed out") if kind == "read" else httpx.ConnectTimeout("timed out")
        )
        self.httpx_mock.add_exception(exc, url=self.url, method="POST")

    def add_connect_error(self) -> None:
        """The endpoint cannot be reached at all."""
        self.httpx_mock.add_exception(
            httpx.ConnectError("connection refused"), url=self.url, method="POST"
        )

    def add_models(self, status: int = 200) -> None:
        """The models endpoint probed by `check()`."""
        self.httpx_mock.add_response(
            url=self.models_url, method="GET", status_code=status, json={"data": []}
        )

    # -- what was sent ------------------------------------------------------------------------

    def requests(self) -> list[httpx.Request]:
        """Every request sent to `url`, in order."""
        return self.httpx_mock.get_requests(url=self.url, method="POST")

    def payloads(self) -> list[dict[str, Any]]:
        """The JSON bodies of `requests()`."""
        return [msgspec.json.decode(r.content) for r in self.requests()]

    def last_payload(self) -> dict[str, Any]:
        """The JSON body of the last request; fails if none was sent."""
        payloads = self.payloads()
        assert payloads, f"no request was sent to {self.url}"
        return payloads[-1]

    # -- for subclasses -----------------------------------------------------------------------

    def _add_error_response(
        self,
        status: int,
        error: Mapping[str, Any] | None,
        *,
        retry_after: str | float | None,
        body: bytes | None,
    ) -> None:
        """An HTTP error: `error` as JSON, or `body` verbatim (e.g. an HTML page from a proxy)."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if body is None:
            body = msgspec.json.encode(error)
            headers["Content-Type"] = "application/json"
        self.httpx_mock.add_response(
            url=self.url, method="POST", status_code=status, headers=headers, content=body
        )

    def _add_body(self, chunks: Sequence[bytes], delay: float) -> ScriptedByteStream:
        steps: list[Step] = []
        for chunk in chunks:
            if delay:
                steps.append(delay)
            steps.append(chunk)
        return self._add_steps(steps, repeat=())

    def _add_steps(self, steps: Iterable[Step], *, repeat: Sequence[Step]) -> ScriptedByteStream:
        stream = ScriptedByteStream(steps, repeat=repeat)
        self.httpx_mock.add_response(
            url=self.url, method="POST", status_code=200, headers=SSE_HEADERS, stream=stream
        )
        return stream


def rechunk(events: list[bytes], *, chunked: bool, chunk_size: int | None) -> list[bytes]:
    """One network chunk per event, the whole body at once, or cuts every `chunk_size` bytes."""
    if chunk_size is not None:
        body = b"".join(events)
        return [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    return events if chunked else [b"".join(events)]


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status, for default error messages."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
