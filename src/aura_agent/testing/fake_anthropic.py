"""A real Anthropic Messages look-alike HTTP/1.1 server on loopback, for end-to-end tests.

It is `FakeOpenRouter` with Anthropic's routes and wire format: the HTTP machinery (parsing,
keep-alive, chunked framing, pauses, noticing a client that went away, request records) is
inherited, only the bodies differ. Serves ``POST /v1/messages`` (a streamed event stream when
``"stream": true``, else a JSON message) and ``GET /v1/models``; every error body is
``{"type": "error", "error": {"type", "message"}}``.

The `Script` knobs mean what they mean for the fake OpenRouter, in Anthropic's terms:
``comments_while_waiting`` sends ``ping`` events, ``in_band_error`` is the ``error`` object of an
``error`` event (e.g. ``{"type": "overloaded_error", "message": "Overloaded"}``),
``finish_reason`` is given in OpenAI's words and sent as Anthropic's (``stop`` -> ``end_turn``,
``length`` -> ``max_tokens``, ``tool_calls`` -> ``tool_use``; anything else verbatim),
``send_done`` sends ``message_stop``, and ``usage=False`` leaves the counts out. ``reasoning``
is a ``thinking`` block (``thinking_delta`` per token, then one ``signature_delta`` of
``thinking_signature``), before the text block; each of ``tool_calls`` is a ``tool_use`` block
after it (``input: {}``, then an ``input_json_delta`` per argument fragment); block indexes count
up from 0; ``logprobs`` has no Anthropic counterpart and is ignored. Like the real API, a request
without ``max_tokens``, without an ``anthropic-version`` header, or with a ``system`` role in
``messages`` gets a 400::

    async with FakeAnthropic() as fake:
        fake.enqueue(Script(tokens=["Hi", "!"], token_delay=0.01))
        ...  # point the adapter at fake.messages_url
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from aura_agent.testing.anthropic_mock import ERROR_TYPES, Block, anthropic_blocks
from aura_agent.testing.fake_openrouter import FakeOpenRouter, wait_first_token
from aura_agent.testing.loopback_http import (
    DRAIN_ABOVE,
    SSE_HEADERS,
    TERMINATOR,
    Connection,
    forever,
    json_response,
    response_head,
    same,
    send_frames,
)
from aura_agent.testing.script import RecordedRequest, Script, echo_tokens, usage_for

__all__ = ["FakeAnthropic", "RecordedRequest", "Script"]

_DEFAULT_MODEL: Final = "claude-3-5-haiku-latest"
_STOP_REASONS: Final = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _event(name: str, data: bytes) -> bytes:
    """One named SSE event wrapped in one HTTP/1.1 chunk."""
    event = b"event: %b\ndata: %b\n\n" % (name.encode(), data)
    return b"%x\r\n%b\r\n" % (len(event), event)


def _json_event(payload: dict[str, Any]) -> bytes:
    return _event(str(payload["type"]), msgspec.json.encode(payload))


_PING_FRAME: Final = _json_event({"type": "ping"})
_TOKEN_HEAD: Final = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
_TEXT_START: Final = _json_event(
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
_TEXT_STOP: Final = _json_event({"type": "content_block_stop", "index": 0})


def _token(text: str) -> bytes:
    return _event("content_block_delta", _TOKEN_HEAD + msgspec.json.encode(text) + b"}}")


def _block_events(blocks: list[Block]) -> tuple[bytes, list[bytes], bytes]:
    """The first ``content_block_start`` (sent before the first-token wait), one step per delta
    (a step also carries the block boundaries before it, so pacing delays deltas, not
    boundaries) and the last ``content_block_stop`` (which a cut stream never sends)."""
    steps: list[bytes] = []
    pending = b""
    for index, (start, deltas) in enumerate(blocks):
        if index:
            pending += _json_event({"type": "content_block_stop", "index": index - 1})
            pending += _json_event(
                {"type": "content_block_start", "index": index, "content_block": start}
            )
        for delta in deltas:
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            steps.append(pending + _json_event(event))
            pending = b""
    if pending:  # the last block had no deltas
        steps.append(pending)
    first = {"type": "content_block_start", "index": 0, "content_block": blocks[0][0]}
    last = {"type": "content_block_stop", "index": len(blocks) - 1}
    return _json_event(first), steps, _json_event(last)


def _input_of(arguments: str) -> Any:
    """A tool call's arguments as the ``input`` object; kept as text when they are not JSON, so
    a script of broken arguments stays visible instead of crashing the fake."""
    try:
        return msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return arguments


class FakeAnthropic(FakeOpenRouter):
    """An Anthropic-compatible server on loopback that replies according to `Script`s."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_script: Script | None = None,
        models: Sequence[str] = (_DEFAULT_MODEL, "claude-sonnet-4-5"),
    ) -> None:
        super().__init__(host=host, port=port, default_script=default_script, prefix="/v1")
        self._chat_path = "/v1/messages"
        self._models_body = msgspec.json.encode(
            {
                "data": [{"type": "model", "id": m, "display_name": m} for m in models],
                "has_more": False,
                "first_id": models[0] if models else None,
                "last_id": models[-1] if models else None,
            }
        )
        self._message_ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """What an Anthropic client takes as its base URL: the root, ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def messages_url(self) -> str:
        """``POST`` here to stream a reply."""
        return f"{self.base_url}/v1/messages"

    @property
    def chat_url(self) -> str:
        """The same as `messages_url`, under the name the fake OpenRouter uses."""
        return self.messages_url

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/v1/models"

    # -- replies ------------------------------------------------------------------------------

    def _error_body(self, status: int, message: str) -> bytes:
        kind = ERROR_TYPES.get(status, "api_error")
        return msgspec.json.encode({"type": "error", "error": {"type": kind, "message": message}})

    def _reject(self, record: RecordedRequest, payload: dict[str, Any]) -> str | None:
        """What the real API would refuse in this request, if anything."""
        if "anthropic-version" not in record.headers:
            return "anthropic-version: header is required"
        if not isinstance(payload.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: Field required"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        return None

    async def _stream_reply(
        self,
        conn: Connection,
        record: RecordedRequest,
        script: Script,
        payload: dict[str, Any],
        keep_alive: bool,
    ) -> bool:
        writer = conn.writer
        if (problem := self._reject(record, payload)) is not None:
            record.status = 400
            writer.write(json_response(400, self._error_body(400, problem), keep_alive))
            return keep_alive
        if script.status != 200 and not script.stall:
            if script.first_token_delay > 0:
                await asyncio.sleep(script.first_token_delay)
            record.status = script.status
            writer.write(self._script_error_response(script, keep_alive))
            return keep_alive
        record.status = 200
        writer.write(response_head(200, [*SSE_HEADERS, *script.headers.items()], keep_alive))
        tokens = script.tokens if script.tokens is not None else echo_tokens(payload)
        usage = usage_for(payload, script.completion_tokens(tokens))
        message = self._message(payload, [], None)
        if script.usage:
            message["usage"] = {"input_tokens": usage["prompt_tokens"], "output_tokens": 1}
        if script.plain:
            first, last = _TEXT_START, _TEXT_STOP
        else:
            blocks = anthropic_blocks(
                tokens,
                thinking=script.reasoning,
                signature=script.thinking_signature,
                tool_uses=script.tool_calls,
            )
            first, steps, last = _block_events(blocks)
        writer.write(_json_event({"type": "message_start", "message": message}) + first)
        if script.stall:
            await writer.drain()
            await forever()
        await wait_first_token(writer, script, keepalive=_PING_FRAME)

        if script.plain:  # tokens framed straight from their text, as the fake OpenRouter does
            body = await send_frames(writer, _token, tokens, script.token_delay)
        else:
            body = await send_frames(writer, same, steps, script.token_delay)
        if script.drop_after_tokens:
            writer.write(body)
            await writer.drain()
            writer.close()
            return False

        if script.in_band_error is not None:
            tail = _json_event({"type": "error", "error": script.in_band_error})
        else:
            final: dict[str, Any] = {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(script), "stop_sequence": None},
            }
            if script.usage:
                final["usage"] = {"output_tokens": usage["completion_tokens"]}
            tail = last + _json_event(final)
            if script.send_done:
                tail += _json_event({"type": "message_stop"})
        writer.write(body + tail + TERMINATOR)
        if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
            await writer.drain()
        return keep_alive

    async def _json_reply(
        self,
        conn: Connection,
        record: RecordedRequest,
        script: Script,
        payload: dict[str, Any],
        keep_alive: bool,
    ) -> bool:
        writer = conn.writer
        if (problem := self._reject(record, payload)) is not None:
            record.status = 400
            writer.write(json_response(400, self._error_body(400, problem), keep_alive))
            return keep_alive
        if script.stall:
            await forever()
        tokens = script.tokens if script.tokens is not None else echo_tokens(payload)
        delay = script.first_token_delay + script.token_delay * max(0, len(tokens) - 1)
        if delay > 0:
            await asyncio.sleep(delay)
        if script.status != 200:
            record.status = script.status
            writer.write(self._script_error_response(script, keep_alive))
            return keep_alive
        if script.drop_after_tokens:
            writer.close()
            return False
        content: list[dict[str, Any]] = []
        if script.reasoning is not None:
            thinking = "".join(script.reasoning)
            signature = script.thinking_signature
            content.append({"type": "thinking", "thinking": thinking, "signature": signature})
        if tokens or not script.tool_calls:
            content.append({"type": "text", "text": "".join(tokens)})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": _input_of(c.arguments)}
            for c in script.tool_calls or ()
        ]
        message = self._message(payload, content, _stop_reason(script))
        if script.usage:
            usage = usage_for(payload, script.completion_tokens(tokens))
            message["usage"] = {
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
            }
        record.status = 200
        body = msgspec.json.encode(message)
        writer.write(json_response(200, body, keep_alive, script.headers.items()))
        return keep_alive

    def _message(
        self, payload: dict[str, Any], content: list[dict[str, Any]], stop_reason: str | None
    ) -> dict[str, Any]:
        model = payload.get("model")
        return {
            "id": f"msg_fake{next(self._message_ids):08d}",
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": model if isinstance(model, str) else _DEFAULT_MODEL,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }


def _stop_reason(script: Script) -> str:
    reason = script.effective_finish_reason
    return _STOP_REASONS.get(reason, reason)
