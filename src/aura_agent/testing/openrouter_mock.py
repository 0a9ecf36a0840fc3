"""OpenRouter (and any OpenAI-compatible) streams and failures, served through pytest-httpx.

The bodies mimic what the services really send, so a test exercises the same parsing paths as
production. OpenRouter: `: OPENROUTER PROCESSING` comments, a role and content per chunk, a
finish chunk, a usage-only chunk with empty `choices` (with `cost`), `[DONE]`. OpenAI
(`OpenAIMock`, for any compatible endpoint): no comments and no OpenRouter-only fields, and
`"usage": null` on every chunk before the usage chunk, as `stream_options.include_usage` gives.
Typical use::

    def test_reply(openrouter_mock: OpenRouterMock) -> None:
        openrouter_mock.add_stream(["Hel", "lo"])
        ...  # call code that streams from OpenRouter through an httpx.AsyncClient
        assert openrouter_mock.last_payload()["stream"] is True

Enable the `openrouter_mock` fixture with `pytest_plugins = ["aura_agent.testing.pytest_plugin"]`;
build an `OpenAIMock(httpx_mock, url=...)` directly. Bodies are async streams: use an
`httpx.AsyncClient`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from aura_agent.config.providers import provider_spec
from aura_agent.testing.replies import tool_call_deltas
from aura_agent.testing.script import ScriptedToolCall
from aura_agent.testing.sse_mock import (
    SSE_HEADERS,
    ScriptedByteStream,
    Step,
    StreamingAPIMock,
    phrase,
    rechunk,
    sse_event,
)

if TYPE_CHECKING:
    from pytest_httpx import HTTPXMock

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_URL",
    "OPENAI_MODEL",
    "OPENAI_URL",
    "PROCESSING_COMMENT",
    "SSE_HEADERS",
    "OpenAIMock",
    "OpenRouterMock",
    "ScriptedByteStream",
    "ScriptedToolCall",
    "Step",
    "openai_sse_chunks",
    "openai_usage",
    "openrouter_sse_chunks",
    "openrouter_usage",
    "sse_event",
]

DEFAULT_URL: Final = provider_spec("openrouter").default_url
DEFAULT_MODEL: Final = "deepseek/deepseek-chat"
OPENAI_URL: Final = provider_spec("openai").default_url
OPENAI_MODEL: Final = "gpt-4o-mini"
PROCESSING_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"

Vendor = Literal["openrouter", "openai"]


def openai_usage(
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    *,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
) -> dict[str, Any]:
    """A usage object shaped like OpenAI's (`stream_options: {include_usage: true}`)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return usage


def openrouter_usage(
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    *,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
    cost: float = 0.0001,
) -> dict[str, Any]:
    """A usage object shaped like OpenRouter's (with `usage: {include: true}`)."""
    usage = openai_usage(
        prompt_tokens,
        completion_tokens,
        reasoning_tokens=reasoning_tokens,
        cached_tokens=cached_tokens,
    )
    return {**usage, "cost": cost}


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
    reasoning: Iterable[str] | None = None,
    reasoning_field: str = "reasoning",
    tool_calls: Sequence[ScriptedToolCall] | None = None,
) -> list[bytes]:
    """The events of one OpenRouter stream, one `bytes` per event (comments included).

    `comments` keep-alive comments come first, then a chunk per `reasoning` token (as
    `delta.<reasoning_field>`, with `content: ""` as OpenRouter sends it), one chunk per token,
    the `tool_calls` (per call its id and name, then a chunk per argument fragment), then either
    the `error` chunk (a top-level `error` object, with a `finish_reason: "error"` choice unless
    `error_finish_reason` is false) or a finish chunk when `finish_reason` is not None (`"stop"`
    becomes `"tool_calls"` after tool calls), then a usage-only chunk when `usage` is given,
    then `[DONE]` when `done`.
    """
    return _chunks(
        "openrouter",
        tokens,
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        tool_calls=tool_calls,
        usage=usage,
        finish_reason=finish_reason,
        comments=comments,
        done=done,
        error=error,
        error_finish_reason=error_finish_reason,
        model=model,
        newline=newline,
    )


def openai_sse_chunks(
    tokens: Iterable[str],
    *,
    usage: Mapping[str, Any] | None = None,
    finish_reason: str | None = "stop",
    done: bool = True,
    error: Mapping[str, Any] | None = None,
    error_finish_reason: bool = False,
    model: str = OPENAI_MODEL,
    newline: str = "\n",
    reasoning: Iterable[str] | None = None,
    reasoning_field: str = "reasoning_content",
    tool_calls: Sequence[ScriptedToolCall] | None = None,
) -> list[bytes]:
    """The events of one OpenAI stream: as `openrouter_sse_chunks`, in OpenAI's own shape.

    When `usage` is given every earlier chunk carries `"usage": null`, as OpenAI sends them
    once usage was asked for. Reasoning chunks have `content: null`, as DeepSeek's
    OpenAI-compatible `reasoning_content` chunks do.
    """
    return _chunks(
        "openai",
        tokens,
        reasoning=reasoning,
        reasoning_field=reasoning_field,
        tool_calls=tool_calls,
        usage=usage,
        finish_reason=finish_reason,
        comments=0,
        done=done,
        error=error,
        error_finish_reason=error_finish_reason,
        model=model,
        newline=newline,
    )


def _chunks(
    vendor: Vendor,
    tokens: Iterable[str],
    *,
    usage: Mapping[str, Any] | None,
    finish_reason: str | None,
    comments: int,
    done: bool,
    error: Mapping[str, Any] | None,
    error_finish_reason: bool,
    model: str,
    newline: str,
    reasoning: Iterable[str] | None = None,
    reasoning_field: str = "reasoning",
    tool_calls: Sequence[ScriptedToolCall] | None = None,
) -> list[bytes]:
    openrouter = vendor == "openrouter"
    base: dict[str, Any] = {
        "id": "gen-mock-0001" if openrouter else "chatcmpl-mock0001",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
    }
    if openrouter:
        base["provider"] = "MockProvider"
    else:
        base["system_fingerprint"] = "fp_mock"
        if usage is not None:
            base["usage"] = None
    extra: dict[str, Any] = {"logprobs": None}

    def choice(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        native = {"native_finish_reason": reason} if openrouter else {}
        return {"index": 0, "delta": delta, "finish_reason": reason, **native, **extra}

    comment = PROCESSING_COMMENT.replace(b"\n", newline.encode())
    events = [comment] * comments
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": "" if openrouter else None, reasoning_field: text}
        for text in reasoning or ()
    ]
    deltas += [{"role": "assistant", "content": token} for token in tokens]
    deltas += tool_call_deltas(tool_calls or ())
    events += [
        sse_event({**base, "choices": [choice(delta, None)]}, newline=newline) for delta in deltas
    ]
    if tool_calls and finish_reason == "stop":
        finish_reason = "tool_calls"
    if error is not None:
        choices: list[dict[str, Any]] = []
        if error_finish_reason:
            choices.append({"index": 0, "delta": {"content": ""}, "finish_reason": "error"})
        events.append(
            sse_event({**base, "error": dict(error), "choices": choices}, newline=newline)
        )
    elif finish_reason is not None:
        delta = {"role": "assistant", "content": ""} if openrouter else {}
        chunk = {**base, "choices": [choice(delta, finish_reason)]}
        events.append(sse_event(chunk, newline=newline))
    if usage is not None:
        events.append(sse_event({**base, "choices": [], "usage": dict(usage)}, newline=newline))
    if done:
        events.append(sse_event("[DONE]", newline=newline))
    return events


class OpenRouterMock(StreamingAPIMock):
    """Registers OpenRouter answers on an `httpx_mock`, one per expected request, in order."""

    vendor: Vendor = "openrouter"
    default_comments = 1  # OpenRouter sends `: OPENROUTER PROCESSING` while a model is queued
    default_model = DEFAULT_MODEL

    def __init__(self, httpx_mock: HTTPXMock, *, url: str = DEFAULT_URL) -> None:
        super().__init__(httpx_mock, url=url)

    @property
    def models_url(self) -> str:
        """The models endpoint next to `url`, as the adapter's `check()` derives it."""
        head, sep, tail = self.url.partition("/chat/completions")
        return f"{head}/models{tail}" if sep else self.url.rstrip("/") + "/models"

    def usage(self, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict[str, Any]:
        """A usage object in this vendor's shape."""
        if self.vendor == "openrouter":
            return openrouter_usage(prompt_tokens, completion_tokens)
        return openai_usage(prompt_tokens, completion_tokens)

    # -- healthy streams ----------------------------------------------------------------------

    def add_stream(
        self,
        tokens: Iterable[str],
        *,
        usage: Mapping[str, Any] | Literal["auto"] | None = "auto",
        finish_reason: str | None = "stop",
        comments: int | None = None,
        done: bool = True,
        chunked: bool = True,
        chunk_size: int | None = None,
        delay: float = 0.0,
        model: str | None = None,
        newline: str = "\n",
        reasoning: Iterable[str] | None = None,
        tool_calls: Sequence[ScriptedToolCall] | None = None,
    ) -> ScriptedByteStream:
        """A streamed reply of `reasoning`, `tokens` and `tool_calls` (see `_chunks`).

        `usage="auto"` reports 10 prompt tokens and one completion token per token, reasoning
        token and argument fragment. `comments`
        defaults to the vendor's habit (1 for OpenRouter, 0 for OpenAI). `chunked` sends one
        event per network chunk (False: the whole body at once); `chunk_size` instead cuts the
        body every N bytes, splitting lines and UTF-8 characters; `delay` pauses before each
        chunk.
        """
        tokens = list(tokens)
        reasoning = list(reasoning) if reasoning is not None else None
        if usage == "auto":
            count = len(tokens) + len(reasoning or ())
            count += sum(len(call.pieces()) for call in tool_calls or ())
            usage = self.usage(10, count)
        events = self._chunks(
            tokens,
            reasoning=reasoning,
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=finish_reason,
            comments=comments,
            done=done,
            model=model,
            newline=newline,
        )
        return self._add_body(rechunk(events, chunked=chunked, chunk_size=chunk_size), delay)

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
        """An HTTP error before any streaming, with an `{"error": {...}}` body.

        `body` replaces the JSON body entirely (e.g. an HTML page from a proxy).
        """
        error: dict[str, Any] = {"message": message if message is not None else phrase(status)}
        if self.vendor == "openrouter":
            error["code"] = status
        else:
            error.update(type=_openai_error_type(status), param=None, code=None)
        if metadata is not None:
            error["metadata"] = dict(metadata)
        self._add_error_response(status, {"error": error}, retry_after=retry_after, body=body)

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
        events = self._chunks(
            tokens,
            error={"code": code, "message": message},
            error_finish_reason=finish_reason_error,
            done=done,
        )
        return self._add_body(events, 0.0)

    def add_truncated_stream(self, tokens: Iterable[str], *, comments: int | None = None) -> None:
        """A stream cut short: tokens, then the body ends with no finish reason and no [DONE]."""
        events = self._chunks(tokens, finish_reason=None, comments=comments, done=False)
        self._add_body(events, 0.0)

    def add_stream_then_error(
        self, tokens: Iterable[str], exc: BaseException, *, comments: int | None = None
    ) -> ScriptedByteStream:
        """A healthy start of `tokens`, then `exc` raised by the body (no finish, no [DONE])."""
        events = self._chunks(tokens, finish_reason=None, comments=comments, done=False)
        return self._add_steps([*events, exc], repeat=())

    def add_stalled_stream(self, *, comment_every: float = 0.05) -> ScriptedByteStream:
        """A 200 stream that only ever sends `: OPENROUTER PROCESSING`, as a queued model does."""
        return self._add_steps([], repeat=[PROCESSING_COMMENT, comment_every])

    # -- internals ----------------------------------------------------------------------------

    def _chunks(
        self,
        tokens: Iterable[str],
        *,
        usage: Mapping[str, Any] | None = None,
        finish_reason: str | None = "stop",
        comments: int | None = None,
        done: bool = True,
        error: Mapping[str, Any] | None = None,
        error_finish_reason: bool = True,
        model: str | None = None,
        newline: str = "\n",
        reasoning: Iterable[str] | None = None,
        tool_calls: Sequence[ScriptedToolCall] | None = None,
    ) -> list[bytes]:
        return _chunks(
            self.vendor,
            tokens,
            reasoning=reasoning,
            reasoning_field="reasoning" if self.vendor == "openrouter" else "reasoning_content",
            tool_calls=tool_calls,
            usage=usage,
            finish_reason=finish_reason,
            comments=self.default_comments if comments is None else comments,
            done=done,
            error=error,
            error_finish_reason=error_finish_reason,
            model=self.default_model if model is None else model,
            newline=newline,
        )


class OpenAIMock(OpenRouterMock):
    """The same helpers for OpenAI or any OpenAI-compatible endpoint (pass its `url`).

    Bodies have OpenAI's shape (see the module docstring); error bodies are `{"error":
    {"message", "type", "param", "code"}}`.
    """

    vendor: Vendor = "openai"
    default_comments = 0
    default_model = OPENAI_MODEL

    def __init__(self, httpx_mock: HTTPXMock, *, url: str = OPENAI_URL) -> None:
        super().__init__(httpx_mock, url=url)


def _openai_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    return "invalid_request_error" if 400 <= status < 500 else "server_error"
