"""OpenRouter streams and failures, served through pytest-httpx's `httpx_mock` fixture.

The bodies mimic what OpenRouter really sends (`: OPENROUTER PROCESSING` comments, a role and
content per chunk, a finish chunk, a usage-only chunk with empty `choices`, `[DONE]`), so a test
exercises the same parsing paths as production. Typical use::

    def test_reply(openrouter_mock: OpenRouterMock) -> None:
        openrouter_mock.add_stream(["Hel", "lo"])
        ...  # call code that streams from OpenRouter through an httpx.AsyncClient
        assert openrouter_mock.last_payload()["stream"] is True

Enable the `openrouter_mock` fixture with `pytest_plugins = ["aura_agent.testing.pytest_plugin"]`.
Bodies are async streams: use an `httpx.AsyncClient`.
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
    "DEFAULT_MODEL",
    "DEFAULT_URL",
    "PROCESSING_COMMENT",
    "OpenRouterMock",
    "ScriptedByteStream",
    "Step",
    "openrouter_sse_chunks",
    "openrouter_usage",
    "sse_event",
]

DEFAULT_URL: Final = "https://openrouter.ai/api/v1/chat/completions"
DEFAULT_MODEL: Final = "deepseek/deepseek-chat"
PROCESSING_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
SSE_HEADERS: Final = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

Step = bytes | float | BaseException
"""One step of a scripted body: bytes are sent, a number is a pause in seconds, an exception is
raised to the reader (e.g. `httpx.ReadTimeout`, `httpx.RemoteProtocolError`)."""


def sse_event(payload: Mapping[str, Any] | str, *, newline: str = "\n") -> bytes:
    """One SSE event carrying `payload` (JSON-encoded unless it is already a string)."""
    data = payload if isinstance(payload, str) else msgspec.json.encode(payload).decode()
    nl = newline
    return "".join(f"data: {line}{nl}" for line in data.split("\n")).encode() + nl.encode()


def openrouter_usage(
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    *,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
    cost: float = 0.0001,
) -> dict[str, Any]:
    """A usage object shaped like OpenRouter's (with `usage: {include: true}`)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": cost,
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return usage


def openrouter_sse_chunks(
    tokens: Iterable[str],
    *,
    usage: Mapping[str, Any] | None = None,
    finish_reason: str | None = "stop",
    comments: int = 1,
    done: bool = True,
    error: Mapping[str, Any] | None = None,
    error_finish_reason: bool = True,
    model: str = DEFAULT_MODEL,
    newline: str = "\n",
) -> list[bytes]:
    """The events of one OpenRouter stream, one `bytes` per event (comments included).

    `comments` keep-alive comments come first, then one chunk per token, then either the
    `error` chunk (a top-level `error` object, with a `finish_reason: "error"` choice unless
    `error_finish_reason` is false) or a finish chunk when `finish_reason` is not None, then a
    usage-only chunk when `usage` is given, then `[DONE]` when `done`.
    """
    base = {
        "id": "gen-mock-0001",
        "provider": "MockProvider",
        "model": model,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
    }
    comment = PROCESSING_COMMENT.replace(b"\n", newline.encode())
    events = [comment] * comments
    for token in tokens:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": token},
            "finish_reason": None,
            "native_finish_reason": None,
            "logprobs": None,
        }
        events.append(sse_event({**base, "choices": [choice]}, newline=newline))
    if error is not None:
        choices: list[dict[str, Any]] = []
        if error_finish_reason:
            choices.append({"index": 0, "delta": {"content": ""}, "finish_reason": "error"})
        chunk = {**base, "error": dict(error), "choices": choices}
        events.append(sse_event(chunk, newline=newline))
    elif finish_reason is not None:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "finish_reason": finish_reason,
            "native_finish_reason": finish_reason,
            "logprobs": None,
        }
        events.append(sse_event({**base, "choices": [choice]}, newline=newline))
    if usage is not None:
        events.append(sse_event({**base, "choices": [], "usage": dict(usage)}, newline=newline))
    if done:
        events.append(sse_event("[DONE]", newline=newline))
    return events


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


class OpenRouterMock:
    """Registers OpenRouter answers on an `httpx_mock`, one per expected request, in order."""

    def __init__(self, httpx_mock: HTTPXMock, *, url: str = DEFAULT_URL) -> None:
        self.httpx_mock = httpx_mock
        self.url = url

    @property
    def models_url(self) -> str:
        """The models endpoint next to `url`, as the adapter's `check()` derives it."""
        head, sep, tail = self.url.partition("/chat/completions")
        return f"{head}/models{tail}" if sep else self.url.rstrip("/") + "/models"

    # -- healthy streams ----------------------------------------------------------------------

    def add_stream(
        self,
        tokens: Iterable[str],
        *,
        usage: Mapping[str, Any] | Literal["auto"] | None = "auto",
        finish_reason: str | None = "stop",
        comments: int = 1,
        done: bool = True,
        chunked: bool = True,
        chunk_size: int | None = None,
        delay: float = 0.0,
        model: str = DEFAULT_MODEL,
        newline: str = "\n",
    ) -> ScriptedByteStream:
        """A streamed reply of `tokens`.

        `usage="auto"` reports 10 prompt tokens and one completion token per token. `chunked`
        sends one event per network chunk (False: the whole body at once); `chunk_size` instead
        cuts the body every N bytes, splitting lines and UTF-8 characters; `delay` pauses before
        each chunk.
        """
        tokens = list(tokens)
        if usage == "auto":
            usage = openrouter_usage(10, len(tokens))
        events = openrouter_sse_chunks(
            tokens,
            usage=usage,
            finish_reason=finish_reason,
            comments=comments,
            done=done,
            model=model,
            newline=newline,
        )
        return self._add_body(_rechunk(events, chunked=chunked, chunk_size=chunk_size), delay)

    def add_sse(self, steps: Iterable[Step | str]) -> ScriptedByteStream:
        """A 200 event stream played exactly as given, for shapes the other helpers do not build.

        Strings and bytes are sent as chunks, numbers are pauses, exceptions are raised.
        """
        return self._add_steps([s.encode() if isinstance(s, str) else s for s in steps], repeat=())

    # -- failures -----------------------------------------------------------------------------

    def add_http_error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_after: str | float | None = None,
        metadata: Mapping[str, Any] | None = None,
        body: bytes | None = None,
    ) -> None:
        """An HTTP error before any streaming, with OpenRouter's `{"error": {...}}` body.

        `body` replaces the JSON body entirely (e.g. an HTML page from a proxy).
        """
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if body is None:
            error: dict[str, Any] = {
                "code": status,
                "message": message if message is not None else _phrase(status),
            }
            if metadata is not None:
                error["metadata"] = dict(metadata)
            body = msgspec.json.encode({"error": error})
            headers["Content-Type"] = "application/json"
        self.httpx_mock.add_response(
            url=self.url, method="POST", status_code=status, headers=headers, content=body
        )

    def add_in_band_error(
        self,
        message: str = "Provider returned error",
        *,
        code: int | str = 502,
        tokens: Iterable[str] = (),
        finish_reason_error: bool = True,
        done: bool = False,
    ) -> ScriptedByteStream:
        """A 200 stream that reports an error in a chunk, after `tokens` (none: the first event)."""
        events = openrouter_sse_chunks(
            tokens,
            error={"code": code, "message": message},
            error_finish_reason=finish_reason_error,
            done=done,
        )
        return self._add_body(events, 0.0)

    def add_truncated_stream(self, tokens: Iterable[str], *, comments: int = 1) -> None:
        """A stream cut short: tokens, then the body ends with no finish reason and no [DONE]."""
        events = openrouter_sse_chunks(tokens, finish_reason=None, comments=comments, done=False)
        self._add_body(events, 0.0)

    def add_timeout(self, kind: Literal["read", "connect"] = "read") -> None:
        """The request fails with an httpx timeout before any response."""
        exc: httpx.TimeoutException = (
            httpx.ReadTimeout("timed out") if kind == "read" else httpx.ConnectTimeout("timed out")
        )
        self.httpx_mock.add_exception(exc, url=self.url, method="POST")

    def add_connect_error(self) -> None:
        """OpenRouter cannot be reached at all."""
        self.httpx_mock.add_exception(
            httpx.ConnectError("connection refused"), url=self.url, method="POST"
        )

    def add_stream_then_error(
        self, tokens: Iterable[str], exc: BaseException, *, comments: int = 1
    ) -> ScriptedByteStream:
        """A healthy start of `tokens`, then `exc` raised by the body (no finish, no [DONE])."""
        events = openrouter_sse_chunks(tokens, finish_reason=None, comments=comments, done=False)
        return self._add_steps([*events, exc], repeat=())

    def add_stalled_stream(self, *, comment_every: float = 0.05) -> ScriptedByteStream:
        """A 200 stream that only ever sends `: OPENROUTER PROCESSING`, as a queued model does."""
        return self._add_steps([], repeat=[PROCESSING_COMMENT, comment_every])

    def add_models(self, status: int = 200) -> None:
        """The models endpoint probed by `check()`."""
        self.httpx_mock.add_response(
            url=self.models_url, method="GET", status_code=status, json={"data": []}
        )

    # -- what was sent ------------------------------------------------------------------------

    def requests(self) -> list[httpx.Request]:
        """Every chat request sent to `url`, in order."""
        return self.httpx_mock.get_requests(url=self.url, method="POST")

    def payloads(self) -> list[dict[str, Any]]:
        """The JSON bodies of `requests()`."""
        return [msgspec.json.decode(r.content) for r in self.requests()]

    def last_payload(self) -> dict[str, Any]:
        """The JSON body of the last chat request; fails if none was sent."""
        payloads = self.payloads()
        assert payloads, f"no request was sent to {self.url}"
        return payloads[-1]

    # -- internals ----------------------------------------------------------------------------

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


def _rechunk(events: list[bytes], *, chunked: bool, chunk_size: int | None) -> list[bytes]:
    if chunk_size is not None:
        body = b"".join(events)
        return [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    return events if chunked else [b"".join(events)]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
