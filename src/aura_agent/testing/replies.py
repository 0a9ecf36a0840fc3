"""The bodies of the fake OpenRouter's replies: Chat Completions chunks and JSON completions.

Kept apart from the server (`fake_openrouter`) so the server reads as one request's life and
this reads as the wire format. A text-only reply is encoded from a JSON prefix computed once per
reply plus each token's JSON string (identical tokens once): benchmarks stream millions of
tokens through it. Reasoning, tool calls and logprobs take the slower general path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from aura_agent.testing.loopback_http import sse_chunk
from aura_agent.testing.script import Script, ScriptedToolCall, usage_for

__all__ = [
    "LOGPROB",
    "ChunkEncoder",
    "completion_body",
    "logprobs_of",
    "reply_usage",
    "tool_call_deltas",
]

LOGPROB: Final = -0.1
"""The log probability of every token: any fixed value does, clients only pass it on."""

_encode = msgspec.json.encode


def logprobs_of(tokens: list[str]) -> dict[str, Any]:
    """A choice's ``logprobs`` object for these tokens, in OpenAI's shape."""
    return {
        "content": [
            {"token": t, "logprob": LOGPROB, "bytes": list(t.encode()), "top_logprobs": []}
            for t in tokens
        ]
    }


def tool_call_deltas(calls: Iterable[ScriptedToolCall]) -> list[dict[str, Any]]:
    """The ``delta`` of every tool-call chunk, in OpenAI's shape: per call, its index, id, type
    and name with empty arguments, then one delta per argument fragment."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [head]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in call.pieces()
        ]
    return deltas


def reply_usage(payload: dict[str, Any], script: Script, tokens: list[str]) -> dict[str, Any]:
    reasoning = len(script.reasoning) if script.reasoning is not None else None
    return usage_for(payload, script.completion_tokens(tokens), reasoning)


class ChunkEncoder:
    """Builds framed SSE events for one reply; the JSON envelope is encoded once per reply."""

    __slots__ = ("_delta_head", "_envelope", "_token_head", "_tokens")

    _TAIL = b',"finish_reason":null}]}'
    _TOKEN_TAIL = b'},"finish_reason":null}]}'

    def __init__(self, gen_id: str, created: int, model: str) -> None:
        self._envelope: dict[str, Any] = {
            "id": gen_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._delta_head = _encode(self._envelope)[:-1] + b',"choices":[{"index":0,"delta":'
        self._token_head = self._delta_head + b'{"role":"assistant","content":'
        self._tokens: dict[str, bytes] = {}

    def token(self, text: str) -> bytes:
        frame = self._tokens.get(text)
        if frame is None:  # identical tokens are encoded once
            json = self._token_head + _encode(text) + self._TOKEN_TAIL
            frame = self._tokens[text] = sse_chunk(json)
        return frame

    def token_with_logprobs(self, text: str) -> bytes:
        logprobs = _encode(logprobs_of([text]))
        return sse_chunk(
            self._token_head + _encode(text) + b'},"logprobs":' + logprobs + self._TAIL
        )

    def delta(self, delta: dict[str, Any]) -> bytes:
        """A chunk whose only choice carries ``delta`` and no finish reason."""
        return sse_chunk(self._delta_head + _encode(delta) + self._TAIL)

    def event(self, **fields: Any) -> bytes:
        return sse_chunk(_encode({**self._envelope, **fields}))

    def content(self, script: Script, tokens: list[str]) -> list[bytes]:
        """Every chunk before the finish: reasoning, then text, then tool calls in order."""
        frames: list[bytes] = []
        if script.reasoning is not None:
            field = script.reasoning_field
            # content null, as DeepSeek sends it: the harder case for a client than "".
            frames += [
                self.delta({"role": "assistant", "content": None, field: text})
                for text in script.reasoning
            ]
        token = self.token_with_logprobs if script.logprobs else self.token
        frames += [token(text) for text in tokens]
        frames += [self.delta(delta) for delta in tool_call_deltas(script.tool_calls or ())]
        return frames


def completion_body(
    gen_id: str,
    created: int,
    model: str,
    script: Script,
    tokens: list[str],
    payload: dict[str, Any],
) -> bytes:
    """A non-streamed ``chat.completion``: the whole message, reasoning and tool calls at once."""
    message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens)}
    choice: dict[str, Any] = {"index": 0, "message": message}
    if not script.plain:
        if script.tool_calls and not tokens:
            message["content"] = None
        if script.reasoning is not None:
            message[script.reasoning_field] = "".join(script.reasoning)
        if script.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in script.tool_calls
            ]
        if script.logprobs:
            choice["logprobs"] = logprobs_of(tokens)
    choice["finish_reason"] = script.effective_finish_reason
    completion: dict[str, Any] = {
        "id": gen_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    if script.usage:
        completion["usage"] = reply_usage(payload, script, tokens)
    return _encode(completion)
