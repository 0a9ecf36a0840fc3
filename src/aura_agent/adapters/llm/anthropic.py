"""Anthropic's native streaming Messages API as a `ChatModel`.

Native rather than through an OpenAI-compatible shim, so that prompt-cache usage, stop reasons
and Anthropic's error kinds (`overloaded_error`, HTTP 529) arrive intact. The request differs
from Chat Completions in ways this adapter hides:

* there is no system role: system messages go, joined, into the top-level `system` field;
* roles must alternate: consecutive messages of one role are merged into one turn, and blank
  messages (which the API rejects) are left out;
* `max_tokens` is required, and `temperature` only goes up to 1 (the service allows 2), so it
  is clamped;
* authentication is `x-api-key` plus a pinned `anthropic-version` header.

Events are read by `anthropic_events`; failures in a 200 stream come as an `error` event whose
kind maps to the domain error the same HTTP status would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Unpack

import msgspec

from aura_agent.adapters.llm.anthropic_events import AnthropicStreamParser, StreamError
from aura_agent.adapters.llm.base import Endpoint, PayloadParser, SSEChatModel
from aura_agent.domain.errors import UnsupportedOption
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, Role

__all__ = ["AnthropicChatModel", "to_anthropic_messages"]

_MAX_TEMPERATURE: Final = 1.0
_FALLBACK_MAX_TOKENS: Final = 4096
"""Anthropic requires a length limit; used when neither the request nor the route sets one."""
_UNTRANSLATED: Final = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)
_TURN_SEPARATOR: Final = "\n\n"


class AnthropicChatModel(SSEChatModel):
    """Streams replies from the Anthropic Messages API; see the module docstring."""

    def __init__(
        self,
        *,
        api_key: str,
        anthropic_version: str = "2023-06-01",
        **endpoint: Unpack[Endpoint],
    ) -> None:
        if not api_key:
            raise ValueError("an Anthropic API key is required")
        auth = {"x-api-key": api_key, "anthropic-version": anthropic_version}
        super().__init__(
            headers={**auth, "Content-Type": "application/json", "Accept": "text/event-stream"},
            secrets=[api_key],
            probe_url=_models_url(endpoint["url"]),
            probe_headers=auth,
            **endpoint,
        )

    def _request_body(self, messages: Sequence[Message], options: GenerationOptions) -> bytes:
        self._refuse_untranslated(messages, options)
        model, temperature, max_tokens = options.model, options.temperature, options.max_tokens
        system, turns = to_anthropic_messages(messages)
        temperature = self._default_temperature if temperature is None else temperature
        if max_tokens is None:
            max_tokens = self._default_max_tokens or _FALLBACK_MAX_TOKENS
        body: dict[str, Any] = {
            "model": self._default_model if model is None else model,
            "max_tokens": max_tokens,
            "messages": turns,
            "stream": True,
        }
        if temperature is not None:
            body["temperature"] = min(temperature, _MAX_TEMPERATURE)
        if system:
            body["system"] = system
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        if options.top_p is not None:
            body["top_p"] = options.top_p
        if options.user is not None:
            body["metadata"] = {"user_id": options.user}
        return msgspec.json.encode(body)

    def _refuse_untranslated(self, messages: Sequence[Message], options: GenerationOptions) -> None:
        """Tools, tool results and structured output are not translated to Anthropic's wire
        yet: refused by name rather than dropped."""
        for param in _UNTRANSLATED:
            if getattr(options, param) not in (None, ()):
                raise UnsupportedOption(
                    f"'{param}' is not supported on {self._errors.label} routes yet",
                    provider=self.provider,
                    param=param,
                )
        for message in messages:
            if message.tool_calls or message.role is Role.TOOL:
                raise UnsupportedOption(
                    f"tool calls and tool results are not supported on {self._errors.label} "
                    "routes yet",
                    provider=self.provider,
                    param="messages",
                )

    def _new_parser(self) -> PayloadParser:
        parser = AnthropicStreamParser()  # per stream: usage arrives in two events
        errors = self._errors

        def parse(payload: str) -> list[ChatEvent] | None:
            try:
                return parser(payload)
            except (msgspec.DecodeError, RecursionError):  # RecursionError: absurd nesting
                raise errors.malformed("event") from None
            except StreamError as exc:  # mapped like the HTTP status its kind stands for
                raise errors.in_band(exc.message, exc.kind) from None

        return parse


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, str]]]:
    """The `system` text and the alternating `messages` list for a conversation."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for message in messages:
        content = message.content
        if not content.strip():
            continue
        if message.role is Role.SYSTEM:
            system.append(content)
        elif turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += _TURN_SEPARATOR + content
        else:
            turns.append({"role": str(message.role), "content": content})
    return _TURN_SEPARATOR.join(system), turns


def _models_url(url: str) -> str:
    """`.../v1/messages` -> `.../v1/models`: listing models is a cheap authenticated probe."""
    head, sep, tail = url.rpartition("/messages")
    if sep and not tail.strip("/"):
        return f"{head}/models"
    return url.rstrip("/") + "/models"
