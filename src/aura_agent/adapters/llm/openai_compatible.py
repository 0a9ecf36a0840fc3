"""Any OpenAI-compatible streaming Chat Completions endpoint as a `ChatModel`.

OpenAI itself, DeepSeek, Groq, Together, Mistral, Ollama (`/v1`), vLLM, llama.cpp's server and LM
Studio all speak the same chunk format, each with its own gaps:

* usage is requested with `stream_options: {"include_usage": true}` (one extra chunk with empty
  `choices` before `[DONE]`), but some servers reject the field (Azure and xAI with a 400,
  Mistral with a 422 naming `stream_options`). Then the request is sent once more without it,
  and if that works the adapter instance stops asking; servers that ignore the field simply
  report no usage, and the stream still ends with a clean `StreamEnd`;
* local servers need no key: with `api_key=None` no Authorization header is sent;
* an error may arrive inside a 200 stream (`error` object, or `finish_reason: "error"`).

The length limit is sent as `max_tokens`: OpenAI's newer `max_completion_tokens` is not used,
because most compatible servers only know `max_tokens` (and OpenAI still accepts it for chat
models). Tools, tool results, structured output and the sampling options go out in OpenAI's own
names (`openai_request`); fields the request did not set are not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Final, Unpack

import httpx
import msgspec

from aura_agent.adapters.llm.base import Endpoint, PayloadParser, SSEChatModel
from aura_agent.adapters.llm.error_bodies import read_bounded
from aura_agent.adapters.llm.openai_chunks import CHUNK_DECODER, InBandError, chunk_events
from aura_agent.adapters.llm.openai_request import option_fields, wire_messages
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message

__all__ = ["OpenAICompatibleChatModel", "models_url"]

_DONE: Final = "[DONE]"
_STREAM_OPTIONS: Final = {"include_usage": True}
# Words of a 400/422 that rejects `stream_options`; the field name itself is the usual sign.
_REJECTION_WORDS: Final = (
    "stream_options",
    "include_usage",
    "unrecognized",
    "unknown field",
    "unknown parameter",
    "extra inputs",
    "extra_forbidden",
)


class OpenAICompatibleChatModel(SSEChatModel):
    """Streams replies from an OpenAI-compatible endpoint; see the module docstring.

    `url` is the full chat-completions URL. `provider` names the service in logs and errors'
    `provider` field, `label` in their messages (both from the provider's row in the config).
    `extra_headers` are added to every request (and may replace the defaults); `extra_body`
    fields are added to the JSON body, but cannot replace the fields this adapter sets.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        include_usage: bool = True,
        **endpoint: Unpack[Endpoint],
    ) -> None:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        headers = {
            **auth,
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **(extra_headers or {}),
        }
        super().__init__(
            headers=headers,
            secrets=[api_key] if api_key else [],
            probe_url=models_url(endpoint["url"]),
            probe_headers=auth,
            **endpoint,
        )
        self._extra_body = dict(extra_body or {})
        self._include_usage = include_usage  # switched off for good if the endpoint rejects it

    def _request_body(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        *,
        include_usage: bool | None = None,
    ) -> bytes:
        """The JSON body: only what the request (or the route's defaults) set is sent."""
        model = options.model
        temperature = (
            self._default_temperature if options.temperature is None else options.temperature
        )
        max_tokens = self._default_max_tokens if options.max_tokens is None else options.max_tokens
        body = dict(self._extra_body)
        body.update(
            model=self._default_model if model is None else model,
            messages=wire_messages(messages),
            stream=True,
        )
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update(option_fields(options))
        if self._include_usage if include_usage is None else include_usage:
            body["stream_options"] = _STREAM_OPTIONS
        return msgspec.json.encode(body)

    async def _open(
        self, stack: AsyncExitStack, messages: Sequence[Message], options: GenerationOptions
    ) -> httpx.Response:
        """Send the request; if `stream_options` is refused, send it once more without."""
        asked_usage = self._include_usage
        resp = await self._post(stack, self._request_body(messages, options))
        if asked_usage and resp.status_code in (400, 422):
            body = await read_bounded(resp)
            if not _rejects_stream_options(body):
                raise self._errors.http_error(
                    resp.status_code, body, resp.headers.get("retry-after")
                )
            await resp.aclose()
            retry = self._request_body(messages, options, include_usage=False)
            resp = await self._post(stack, retry)
            if resp.is_success:  # only a retry that worked proves the field was the problem
                self._include_usage = False
        await self._accept(resp)
        return resp

    def _new_parser(self) -> PayloadParser:
        return self._parse  # chunks carry all their state; one bound method serves every stream

    def _parse(self, payload: str) -> list[ChatEvent] | None:
        if payload == _DONE:
            return None
        try:
            return chunk_events(CHUNK_DECODER.decode(payload))
        except (msgspec.DecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            raise self._errors.malformed() from None
        except InBandError as exc:
            raise self._errors.in_band(exc.message, exc.code) from None


def models_url(url: str) -> str:
    """`.../chat/completions` -> `.../models`: the cheap authenticated probe of `check()`."""
    head, sep, tail = url.partition("/chat/completions")
    if sep:
        return f"{head}/models{tail}"
    return url.rstrip("/") + "/models"


def _rejects_stream_options(body: bytes) -> bool:
    text = body.decode("utf-8", "replace").lower()
    return any(word in text for word in _REJECTION_WORDS)
