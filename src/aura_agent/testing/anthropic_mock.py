"""Anthropic Messages streams and failures, served through pytest-httpx's `httpx_mock` fixture.

The bodies follow the documented event flow byte for byte in shape: `event:` and `data:` lines,
`message_start` with input usage, `ping`, one text block (`content_block_start`, a
`content_block_delta` per token, `content_block_stop`), `message_delta` with the stop reason and
cumulative output usage, `message_stop`. Errors are `{"type": "error", "error": {"type",
"message"}}`, as an HTTP body or as an `error` event inside a 200 stream. Typical use::

    def test_reply(httpx_mock: HTTPXMock) -> None:
        anthropic = AnthropicMock(httpx_mock)
        anthropic.add_stream(["Hel", "lo"])
        ...  # stream through an httpx.AsyncClient pointed at anthropic.url
        assert anthropic.last_payload()["max_tokens"] > 0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from aura_agent.config.providers import provider_spec
from aura_agent.testing.script import ScriptedToolCall
from aura_agent.testing.sse_mock import (
    ScriptedByteStream,
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
    "ERROR_TYPES",
    "PING",
    "AnthropicMock",
    "Block",
    "ScriptedToolCall",
    "anthropic_blocks",
    "anthropic_error",
    "anthropic_event",
    "anthropic_sse_events",
    "anthropic_usage",
]

DEFAULT_URL: Final = provider_spec("anthropic").default_url
DEFAULT_MODEL: Final = "claude-3-5-haiku-latest"
ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
"""The documented error kind of each HTTP status."""


def anthropic_event(payload: Mapping[str, Any], *, newline: str = "\n") -> bytes:
    """One Anthropic SSE event: `event: <type>` and the JSON `data:` line."""
    return sse_event(payload, event=str(payload["type"]), newline=newline)


PING: Final = anthropic_event({"type": "ping"})


def anthropic_usage(
    input_tokens: int = 10,
    output_tokens: int = 5,
    *,
    cache_read_input_tokens: int | None = None,
    cache_creation_input_tokens: int | None = None,
) -> dict[str, int]:
    """A usage object as Anthropic reports it (cache counts are not part of `input_tokens`)."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_read_input_tokens is not None:
        usage["cache_read_input_tokens"] = cache_read_input_tokens
    if cache_creation_input_tokens is not None:
        usage["cache_creation_input_tokens"] = cache_creation_input_tokens
    return usage


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    """An error body or `error` event payload."""
    return {"type": "error", "error": {"type": kind, "message": message}}


Block = tuple[dict[str, Any], list[dict[str, Any]]]
"""A content block's ``content_block_start`` body and the ``delta`` of each of its deltas."""


def anthropic_blocks(
    tokens: Sequence[str],
    *,
    thinking: Iterable[str] | None = None,
    signature: str = "sig-mock",
    tool_uses: Iterable[ScriptedToolCall] | None = None,
) -> list[Block]:
    """The content blocks of one reply: `thinking` (its deltas, then a `signature_delta`), the
    text, then a `tool_use` per call (an `input_json_delta` per argument fragment).

    The text block is left out when tool calls come without any text, as Claude does when it
    goes straight to a tool.
    """
    calls = list(tool_uses or ())
    blocks: list[Block] = []
    if thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in thinking]
        deltas.append({"type": "signature_delta", "signature": signature})
        blocks.append(({"type": "thinking", "thinking": ""}, deltas))
    if tokens or not calls:
        text = [{"type": "text_delta", "text": t} for t in tokens]
        blocks.append(({"type": "text", "text": ""}, text))
    for call in calls:
        start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        pieces = [{"type": "input_json_delta", "partial_json": p} for p in call.pieces()]
        blocks.append((start, pieces))
    return blocks


def anthropic_sse_events(
    tokens: Iterable[str],
    *,
    usage: Mapping[str, int] | None = None,
    stop_reason: str | None = "end_turn",
    pings: int = 1,
    message_stop: bool = True,
    error: Mapping[str, Any] | None = None,
    model: str = DEFAULT_MODEL,
    newline: str = "\n",
    thinking: Iterable[str] | None = None,
    signature: str = "sig-mock",
    tool_uses: Sequence[ScriptedToolCall] | None = None,
) -> list[bytes]:
    """The events of one Anthropic stream, one `bytes` per event.

    `usage` splits as Anthropic does: the input and cache counts in `message_start` (with an
    output count of 1), the final cumulative output count in `message_delta`. Without `usage`
    no counts are sent. The blocks are those of `anthropic_blocks`, indexed from 0, the pings
    after the first block's start. After the last delta come either the `error` event, or
    (when `stop_reason` is not None) the last `content_block_stop` and `message_delta` (a
    default `end_turn` becomes `tool_use` after tool calls), then `message_stop` when asked.
    """

    def event(payload: Mapping[str, Any]) -> bytes:
        return anthropic_event(payload, newline=newline)

    start_usage: dict[str, int] | None = None
    if usage is not None:
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        start_usage["output_tokens"] = 1
    message: dict[str, Any] = {
        "id": "msg_mock0001",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
    }
    if start_usage is not None:
        message["usage"] = start_usage
    blocks = anthropic_blocks(
        list(tokens), thinking=thinking, signature=signature, tool_uses=tool_uses
    )
    if tool_uses and stop_reason == "end_turn":
        stop_reason = "tool_use"
    events = [event({"type": "message_start", "message": message})]
    events.append(event({"type": "content_block_start", "index": 0, "content_block": blocks[0][0]}))
    events.extend(anthropic_event({"type": "ping"}, newline=newline) for _ in range(pings))
    for index, (start, deltas) in enumerate(blocks):
        if index:
            events.append(event({"type": "content_block_stop", "index": index - 1}))
            events.append(
                event({"type": "content_block_start", "index": index, "content_block": start})
            )
        events += [
            event({"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]
    if error is not None:
        events.append(event(error))
        return events
    if stop_reason is None:
        return events
    events.append(event({"type": "content_block_stop", "index": len(blocks) - 1}))
    final: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
    }
    if usage is not None:
        final["usage"] = {"output_tokens": usage.get("output_tokens", 0)}
    events.append(event(final))
    if message_stop:
        events.append(event({"type": "message_stop"}))
    return events


class AnthropicMock(StreamingAPIMock):
    """Registers Anthropic answers on an `httpx_mock`, one per expected request, in order."""

    def __init__(self, httpx_mock: HTTPXMock, *, url: str = DEFAULT_URL) -> None:
        super().__init__(httpx_mock, url=url)

    @property
    def models_url(self) -> str:
        """`.../v1/messages` -> `.../v1/models`, as the adapter's `check()` derives it."""
        return self.url.removesuffix("/messages") + "/models"

    # -- healthy streams ----------------------------------------------------------------------

    def add_stream(
        self,
        tokens: Iterable[str],
        *,
        usage: Mapping[str, int] | Literal["auto"] | None = "auto",
        stop_reason: str | None = "end_turn",
        pings: int = 1,
        message_stop: bool = True,
        chunked: bool = True,
        chunk_size: int | None = None,
        delay: float = 0.0,
        newline: str = "\n",
        thinking: Iterable[str] | None = None,
        tool_uses: Sequence[ScriptedToolCall] | None = None,
    ) -> ScriptedByteStream:
        """A streamed reply of `tokens`; the knobs are those of `OpenRouterMock.add_stream`,
        `thinking` and `tool_uses` those of `anthropic_sse_events`.

        `usage="auto"` reports 10 input tokens and one output token per token, thinking token
        and argument fragment.
        """
        tokens = list(tokens)
        thinking = list(thinking) if thinking is not None else None
        if usage == "auto":
            count = len(tokens) + len(thinking or ())
            count += sum(len(call.pieces()) for call in tool_uses or ())
            usage = anthropic_usage(10, count)
        events = anthropic_sse_events(
            tokens,
            thinking=thinking,
            tool_uses=tool_uses,
            usage=usage,
            stop_reason=stop_reason,
            pings=pings,
            message_stop=message_stop,
            newline=newline,
        )
        return self._add_body(rechunk(events, chunked=chunked, chunk_size=chunk_size), delay)

    # -- failures -----------------------------------------------------------------------------

    def add_http_error(
        self,
        status: int,
        message: str | None = None,
        *,
        kind: str | None = None,
        retry_after: str | float | None = None,
        body: bytes | None = None,
    ) -> None:
        """An HTTP error before any streaming; `kind` defaults to the status's documented kind."""
        kind = kind or ERROR_TYPES.get(status, "api_error")
        error = anthropic_error(kind, message if message is not None else phrase(status))
        self._add_error_response(status, error, retry_after=retry_after, body=body)

    def add_error_event(
        self,
        kind: str = "overloaded_error",
        message: str = "Overloaded",
        *,
        tokens: Iterable[str] = (),
    ) -> ScriptedByteStream:
        """A 200 stream that reports an `error` event after `tokens` (none: before any text)."""
        events = anthropic_sse_events(tokens, error=anthropic_error(kind, message))
        return self._add_body(events, 0.0)

    def add_truncated_stream(self, tokens: Iterable[str]) -> ScriptedByteStream:
        """A stream cut short: tokens, then the body ends with no stop reason or message_stop."""
        return self._add_body(anthropic_sse_events(tokens, stop_reason=None), 0.0)

    def add_stream_then_error(
        self, tokens: Iterable[str], exc: BaseException
    ) -> ScriptedByteStream:
        """A healthy start of `tokens`, then `exc` raised by the body."""
        events = anthropic_sse_events(tokens, stop_reason=None)
        return self._add_steps([*events, exc], repeat=())

    def add_stalled_stream(self, *, ping_every: float = 0.05) -> ScriptedByteStream:
        """A 200 stream that starts a message, then only ever sends `ping`s."""
        start = anthropic_sse_events([], stop_reason=None, pings=0)
        return self._add_steps(start, repeat=[PING, ping_every])
