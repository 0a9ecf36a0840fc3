"""What a loopback fake answers (`Script`) and what it saw (`RecordedRequest`), with the
request-dependent reply content (echoed tokens, deterministic usage) every fake shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec

__all__ = [
    "RecordedRequest",
    "Script",
    "ScriptedToolCall",
    "echo_tokens",
    "messages_of",
    "text_of",
    "usage_for",
]

_WORD: Final = re.compile(r"\S+\s*")


class ScriptedToolCall(msgspec.Struct, frozen=True):
    """One tool call the fake streams: ``arguments`` is the raw JSON text, sent as is.

    Real models stream the arguments in fragments cut anywhere (inside a key, a number, a
    string, an escape), so ``fragments`` splits the text into that many pieces at evenly spaced
    character positions: clients must only ever concatenate. Fewer pieces come out when the text
    has fewer characters; every piece but one of ``""`` is non-empty. ``arguments`` need not be
    valid JSON (models do produce broken arguments).
    """

    id: str
    name: str
    arguments: str
    fragments: int = 1

    def __post_init__(self) -> None:
        if self.fragments < 1:
            raise ValueError(f"fragments must be >= 1, got {self.fragments}")

    def pieces(self) -> list[str]:
        """``arguments`` cut into ``fragments`` pieces on character boundaries."""
        text = self.arguments
        n = max(1, min(self.fragments, len(text)))
        cuts = [len(text) * k // n for k in range(n + 1)]
        return [text[cuts[k] : cuts[k + 1]] for k in range(n)]


class Script(msgspec.Struct, kw_only=True, frozen=True):
    """How the fake answers one chat request; every field defaults to a healthy streamed reply.

    - ``tokens=None`` echoes the last user message that has text (``"Echo: " + text`` split
      into word tokens keeping their trailing spaces), so tests get request-dependent output
      without scripting.
    - Delays are seconds: ``first_token_delay`` before the first token (and before an error
      response), ``token_delay`` between tokens, each token then being its own write. Without
      ``token_delay`` all tokens go out in one write: same bytes, far fewer syscalls.
    - ``status != 200`` answers ``{"error": {"code", "message"}}`` instead of a stream;
      ``headers`` go on every response (e.g. ``Retry-After``).
    - ``in_band_error`` is sent after the tokens as a ``data:`` event carrying ``"error"``
      (OpenRouter's mid-stream error shape, ``finish_reason: "error"``); the stream then ends
      without finish, usage or ``[DONE]``, as OpenRouter's does.
    - ``drop_after_tokens`` closes the socket right after the tokens (no terminating chunk).
    - ``stall`` sends the stream headers, then nothing until the client leaves (for non-stream
      requests: nothing at all).
    - ``comments_while_waiting`` sends ``: OPENROUTER PROCESSING`` at once and then every that
      many seconds during ``first_token_delay``.
    - ``reasoning`` tokens come before the text, as ``delta.<reasoning_field>`` chunks
      (``reasoning_content``: DeepSeek/LiteLLM; ``reasoning``: OpenRouter), or as a
      ``thinking`` block closed by a ``signature_delta`` of ``thinking_signature`` (Anthropic).
    - ``tool_calls`` come after the text, each as its name then its argument fragments (see
      `ScriptedToolCall`); the default ``finish_reason`` then becomes ``"tool_calls"``.
    - ``logprobs`` puts a ``logprobs.content`` entry on every text token.
    - ``drop_after_tokens`` and ``in_band_error`` take effect after all of those.

    Non-stream requests use ``tokens``, the delays, ``status``, ``error_message``, ``headers``,
    ``finish_reason``, ``usage``, ``stall``, ``drop_after_tokens`` and the reasoning, tool-call
    and logprobs fields only.
    """

    tokens: list[str] | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    status: int = 200
    error_message: str | None = None
    headers: dict[str, str] = {}
    in_band_error: dict[str, Any] | None = None
    finish_reason: str = "stop"
    usage: bool = True
    send_done: bool = True
    drop_after_tokens: bool = False
    stall: bool = False
    comments_while_waiting: float | None = None
    tool_calls: list[ScriptedToolCall] | None = None
    reasoning: list[str] | None = None
    reasoning_field: str = "reasoning_content"
    thinking_signature: str = "sig-fake"
    logprobs: bool = False

    @property
    def plain(self) -> bool:
        """Text only: the fast path that benchmarks rely on, whose bytes never change."""
        return self.tool_calls is None and self.reasoning is None and not self.logprobs

    @property
    def effective_finish_reason(self) -> str:
        """``finish_reason``, except that a default ``stop`` after tool calls is ``tool_calls``."""
        if self.tool_calls and self.finish_reason == "stop":
            return "tool_calls"
        return self.finish_reason

    def completion_tokens(self, tokens: list[str]) -> int:
        """Text tokens, reasoning tokens and argument fragments: what a model would bill."""
        count = len(tokens)
        if self.reasoning is not None:
            count += len(self.reasoning)
        if self.tool_calls is not None:
            count += sum(len(call.pieces()) for call in self.tool_calls)
        return count


@dataclass(slots=True, eq=False)
class RecordedRequest:
    """One request as the server saw it; fields from ``script`` on are filled in while answering.

    ``finished_at`` is set when the server finished replying or noticed the client was gone;
    ``client_closed`` is true when the client closed the connection before the reply completed,
    which is how tests check that the gateway hangs up upstream when its own client leaves.
    """

    method: str
    path: str
    """The request target as sent, query string included."""
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with ``", "``."""
    body: bytes
    json: Any
    """The body parsed as JSON, or ``None`` when empty or not JSON."""
    received_at: float
    """``time.monotonic()`` when the whole request had arrived."""
    connection_id: int
    """Serial number of the TCP connection, to tell reused connections apart."""
    script: Script | None = None
    """The script that answered it (chat requests only)."""
    status: int | None = None
    finished_at: float | None = None
    client_closed: bool = False


def text_of(content: Any) -> str:
    """Plain text of a message content: a string, or the text parts of a multimodal list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def messages_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _has_text(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and any(
        isinstance(part, dict) and isinstance(part.get("text"), str) for part in content
    )


def echo_tokens(payload: dict[str, Any]) -> list[str]:
    """``"Echo: "`` and the last user text, in word tokens.

    User messages without any text (``content: null``, or only Anthropic ``tool_result`` or
    image parts) are skipped, so an agent loop's tool-result turn echoes the question instead.
    """
    last_user = next(
        (
            m
            for m in reversed(messages_of(payload))
            if m.get("role") == "user" and _has_text(m.get("content"))
        ),
        None,
    )
    text = "Echo: " + (text_of(last_user.get("content")) if last_user else "")
    return _WORD.findall(text)


def usage_for(
    payload: dict[str, Any], completion_tokens: int, reasoning_tokens: int | None = None
) -> dict[str, Any]:
    """Deterministic counts: prompt tokens are whitespace-separated words of all messages.

    ``reasoning_tokens`` (part of ``completion_tokens``, as OpenAI counts them) adds
    ``completion_tokens_details``.
    """
    prompt_tokens = sum(len(text_of(m.get("content")).split()) for m in messages_of(payload))
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage
