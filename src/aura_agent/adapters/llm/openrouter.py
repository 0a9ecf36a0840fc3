"""OpenRouter's streaming Chat Completions API as a `ChatModel`.

OpenRouter answers with an event stream in the OpenAI chunk format, sends `: OPENROUTER
PROCESSING` comments while a model is queued, and reports failures either as an HTTP status
before the stream, or in-band inside a 200 stream. This adapter turns all of it into domain
events and domain errors whose messages are safe to show to end users: no key, no URL, no
traceback.

The httpx client is shared for the app's lifetime (connection reuse) and owned by the container;
its read timeout is the longest silence allowed between chunks. That timeout cannot catch a
model that never starts, because the comments keep the connection busy, so each request also
has a first-token deadline: one `asyncio.timeout` scope that is switched off at the first token.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import msgspec

from aura_agent.adapters.llm.openai_chunks import CHUNK_DECODER, InBandError, chunk_events
from aura_agent.adapters.llm.sse import SSEDecoder, SSEError
from aura_agent.domain.errors import (
    ChatModelError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderOverloaded,
    ProviderPaymentRequired,
    ProviderRateLimited,
    ProviderStreamError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    StreamEnd,
    TextDelta,
    Usage,
)

__all__ = ["OpenRouterChatModel"]

PROVIDER: Final = "openrouter"
_LABEL: Final = "OpenRouter"
_DONE: Final = "[DONE]"
_ERROR_BODY_LIMIT: Final = 16 * 1024  # enough for any JSON error; an HTML error page is cut short
_DETAIL_LIMIT: Final = 200  # longest upstream text quoted in a user-facing message
_DRAIN_TIMEOUT: Final = 0.25
_DRAIN_LIMIT: Final = 64 * 1024

# Anything that looks like a credential or a link is removed from upstream text we quote.
_SECRET_RE: Final = re.compile(r"(?i)\bbearer\s+\S+|\bsk-[A-Za-z0-9_-]{6,}")
_URL_RE: Final = re.compile(r"(?i)\b(?:https?|wss?)://\S+")
_CONTEXT_HINTS: Final = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "prompt is too long",
)
# Word codes some OpenAI-compatible servers put in `error.code`, read as the HTTP status they mean.
_WORD_CODES: Final = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 402,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "overloaded": 529,
    "overloaded_error": 529,
    "timeout": 408,
}


class OpenRouterChatModel:
    """Streams replies from OpenRouter; see the module docstring for the failure handling."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_key: str,
        url: str,
        default_model: str,
        default_temperature: float,
        default_max_tokens: int,
        first_token_timeout: float,
        referer: str | None = None,
        title: str | None = None,
        check_timeout: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("an OpenRouter API key is required")
        self._client = client
        self._api_key = api_key
        self._url = url
        self._models_url = _models_url(url)
        self._default_model = default_model
        self._default_temperature = default_temperature
        self._default_max_tokens = default_max_tokens
        self._first_token_timeout = first_token_timeout
        self._check_timeout = check_timeout
        # Built once; httpx copies them into each request.
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        }
        if referer:
            self._headers["HTTP-Referer"] = referer
        if title:
            self._headers["X-Title"] = title

    @property
    def provider(self) -> str:
        """Always `openrouter`."""
        return PROVIDER

    @property
    def default_model(self) -> str:
        """The model used when the options name none."""
        return self._default_model

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream the reply: `TextDelta`s, then at most one `Usage`, then one `StreamEnd`.

        The request lives inside `client.stream(...)`, so closing or cancelling this generator
        closes the upstream connection at once and OpenRouter stops billing.
        """
        body = self._request_body(messages, options)
        decoder = SSEDecoder()
        finish: str | None = None
        usage: Usage | None = None
        saw_done = False
        started = False  # a token was yielded: the first-token deadline no longer applies
        first_token = asyncio.timeout(self._first_token_timeout)
        try:
            async with (
                first_token,
                self._client.stream("POST", self._url, content=body, headers=self._headers) as resp,
            ):
                if not resp.is_success:
                    raise await self._http_error(resp)
                if "json" in resp.headers.get("content-type", ""):
                    raise await self._json_instead_of_stream(resp)
                chunks = resp.aiter_bytes()
                eof = False
                while not (eof or saw_done):
                    try:
                        payloads = decoder.feed(await anext(chunks))
                    except StopAsyncIteration:
                        payloads = decoder.flush()
                        eof = True
                    except httpx.HTTPError:
                        if finish is None:
                            raise
                        break  # the reply is complete; only a trailing usage chunk is lost
                    for payload in payloads:
                        if payload == _DONE:
                            saw_done = True
                            await _drain(chunks)
                            break
                        try:
                            events = chunk_events(CHUNK_DECODER.decode(payload))
                        except msgspec.DecodeError:
                            raise ProviderStreamError(
                                f"{_LABEL} sent a malformed chunk", provider=PROVIDER
                            ) from None
                        except InBandError as exc:
                            raise self._in_band_error(exc) from None
                        for event in events:
                            if isinstance(event, TextDelta):
                                if not started:
                                    first_token.reschedule(None)
                                    started = True
                                yield event
                            elif isinstance(event, StreamEnd):
                                finish = event.finish_reason
                            else:
                                usage = event  # the last report wins
        except TimeoutError:
            if first_token.expired():
                raise ProviderTimeout(
                    f"The model did not start answering within {self._first_token_timeout:g} s",
                    provider=PROVIDER,
                ) from None
            raise
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if started:
                raise ProviderStreamError(
                    f"The connection to {_LABEL} broke in the middle of the reply",
                    provider=PROVIDER,
                ) from exc
            raise ProviderUnavailable(f"Could not reach {_LABEL}", provider=PROVIDER) from exc
        except SSEError as exc:
            raise ProviderStreamError(
                f"{_LABEL} sent an invalid event stream", provider=PROVIDER
            ) from exc

        if finish is None and not saw_done:
            raise ProviderStreamError(
                f"The stream ended early: {_LABEL} closed it before the reply was complete",
                provider=PROVIDER,
            )
        if usage is not None:
            yield usage
        yield StreamEnd(finish_reason=finish or "stop")

    async def check(self) -> None:
        """Probe the models endpoint; only the status line is read, not the (large) model list."""
        try:
            async with self._client.stream(
                "GET",
                self._models_url,
                headers={"Authorization": self._headers["Authorization"]},
                timeout=httpx.Timeout(self._check_timeout),
            ) as resp:
                status = resp.status_code
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"{_LABEL} did not answer within {self._check_timeout:g} s", provider=PROVIDER
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ProviderUnavailable(f"Could not reach {_LABEL}", provider=PROVIDER) from exc
        if status in (401, 403):
            raise ProviderAuthError(
                f"{_LABEL} rejected the API key", provider=PROVIDER, status=status
            )
        if not 200 <= status < 300:
            raise ProviderUnavailable(
                f"{_LABEL} is not available (HTTP {status})", provider=PROVIDER, status=status
            )

    # -- request ------------------------------------------------------------------------------

    def _request_body(self, messages: Sequence[Message], options: GenerationOptions) -> bytes:
        """The JSON body; messages are listed field by field so new Message fields never leak."""
        model, temperature, max_tokens = options.model, options.temperature, options.max_tokens
        return msgspec.json.encode(
            {
                "model": self._default_model if model is None else model,
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "stream": True,
                "temperature": self._default_temperature if temperature is None else temperature,
                "max_tokens": self._default_max_tokens if max_tokens is None else max_tokens,
                "usage": {"include": True},
            }
        )

    # -- errors -------------------------------------------------------------------------------

    async def _http_error(self, resp: httpx.Response) -> ChatModelError:
        """The domain error for a non-2xx answer, from its status, body and Retry-After."""
        body = await _read_bounded(resp)
        message, hint, _ = _parse_error_body(body)
        retry_after = _parse_retry_after(resp.headers.get("retry-after"))
        return self._error_for_status(
            resp.status_code, self._clean(message), hint, retry_after=retry_after
        )

    async def _json_instead_of_stream(self, resp: httpx.Response) -> ChatModelError:
        """A 200 with a JSON body: some gateways report errors this way even for streams."""
        message, hint, code = _parse_error_body(await _read_bounded(resp))
        status = _status_of(code)
        if status is None:
            return ProviderStreamError(
                _with_detail(f"{_LABEL} answered without a stream", self._clean(message)),
                provider=PROVIDER,
            )
        return self._error_for_status(status, self._clean(message), hint)

    def _in_band_error(self, exc: InBandError) -> ChatModelError:
        """The domain error for an error reported inside a 200 stream."""
        detail = self._clean(exc.message)
        status = _status_of(exc.code)
        if status is not None:
            return self._error_for_status(status, detail, "", in_band=True)
        if detail is not None and "overloaded" in detail.lower():
            return ProviderOverloaded(
                _with_detail("The model is overloaded right now; try again shortly", detail),
                provider=PROVIDER,
            )
        return ProviderStreamError(
            _with_detail("The model stopped with an error", detail), provider=PROVIDER
        )

    def _error_for_status(
        self,
        status: int,
        detail: str | None,
        hint: str,
        *,
        retry_after: float | None = None,
        in_band: bool = False,
    ) -> ChatModelError:
        """Map an HTTP-like status (and the upstream's words) to the domain error tree."""
        text = f"{detail or ''} {hint}".lower()
        if status == 401:
            return ProviderAuthError(
                _with_detail(f"{_LABEL} rejected the API key", detail),
                provider=PROVIDER,
                status=status,
            )
        if status == 403:
            return ProviderAuthError(
                _with_detail(f"{_LABEL} refused access to this request", detail),
                provider=PROVIDER,
                status=status,
            )
        if status == 402:
            return ProviderPaymentRequired(
                _with_detail(f"The {_LABEL} account has run out of credits", detail),
                provider=PROVIDER,
                status=status,
            )
        if status == 408:
            return ProviderTimeout(
                _with_detail(f"{_LABEL} timed out waiting for the model", detail),
                provider=PROVIDER,
                status=status,
            )
        if status == 429:
            wait = (
                "retry later" if retry_after is None else f"retry after {math.ceil(retry_after)} s"
            )
            return ProviderRateLimited(
                _with_detail(f"{_LABEL} rate limit reached; {wait}", detail),
                provider=PROVIDER,
                status=status,
                retry_after=retry_after,
            )
        if status == 529 or (status >= 500 and "overloaded" in text):
            return ProviderOverloaded(
                _with_detail("The model is overloaded right now; try again shortly", detail),
                provider=PROVIDER,
                status=status,
            )
        if 400 <= status < 500:
            if any(h in text for h in _CONTEXT_HINTS):
                return ContextTooLong(
                    _with_detail(
                        "The conversation is too long for the model's context window", detail
                    ),
                    provider=PROVIDER,
                    status=status,
                )
            return ProviderBadRequest(
                _with_detail(f"{_LABEL} rejected the request", detail),
                provider=PROVIDER,
                status=status,
            )
        if 500 <= status < 600:
            return ProviderUnavailable(
                _with_detail(f"{_LABEL} cannot serve the model right now (HTTP {status})", detail),
                provider=PROVIDER,
                status=status,
            )
        if in_band:
            return ProviderStreamError(
                _with_detail("The model stopped with an error", detail),
                provider=PROVIDER,
                status=status,
            )
        return ProviderUnavailable(
            _with_detail(f"{_LABEL} gave an unexpected answer (HTTP {status})", detail),
            provider=PROVIDER,
            status=status,
        )

    def _timeout_error(self, exc: httpx.TimeoutException) -> ProviderTimeout:
        """Name the timeout that fired, with the configured number of seconds."""
        timeout = self._client.timeout
        if isinstance(exc, httpx.ConnectTimeout):
            message = f"Could not connect to {_LABEL} within {_seconds(timeout.connect)}"
        elif isinstance(exc, httpx.ReadTimeout):
            message = f"No data from the model for {_seconds(timeout.read)}"
        else:
            message = f"{_LABEL} did not accept the request in time"
        return ProviderTimeout(message, provider=PROVIDER)

    def _clean(self, text: str | None) -> str | None:
        """Upstream text made safe to quote: no key, no link, one short line, never HTML."""
        if not text:
            return None
        text = text.replace(self._api_key, "***")
        text = _SECRET_RE.sub("***", text)
        text = _URL_RE.sub("<link>", text)
        text = " ".join(text.split())
        if not text or text.startswith("<"):  # an HTML error page says nothing useful
            return None
        if "Traceback (most recent call last)" in text:
            return None
        if len(text) > _DETAIL_LIMIT:
            text = text[: _DETAIL_LIMIT - 1].rstrip() + "…"
        return text


# -- helpers ----------------------------------------------------------------------------------


def _models_url(url: str) -> str:
    """`.../chat/completions` -> `.../models` (the probe target of `check`)."""
    head, sep, tail = url.partition("/chat/completions")
    if sep:
        return f"{head}/models{tail}"
    return url.rstrip("/") + "/models"


def _with_detail(message: str, detail: str | None) -> str:
    return f"{message} ({detail})" if detail else message


def _seconds(value: float | None) -> str:
    return "too long" if value is None else f"{value:g} s"


def _status_of(code: int | str | None) -> int | None:
    """An HTTP-like status from an error code that may be a number, a numeric string or a word."""
    if isinstance(code, int):
        return code
    if isinstance(code, str):
        if code.isdigit():
            return int(code)
        return _WORD_CODES.get(code.lower())
    return None


async def _read_bounded(resp: httpx.Response) -> bytes:
    """At most `_ERROR_BODY_LIMIT` bytes of an error body; a failing read gives what we have."""
    body = bytearray()
    try:
        async for part in resp.aiter_bytes():
            body += part
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    return bytes(body[:_ERROR_BODY_LIMIT])


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows `[DONE]` (normally just the end of the body), briefly.

    A response closed before its end forces httpx to drop the connection; reading the last
    bytes lets the shared client reuse it and saves a TLS handshake on the next request.
    """
    read = 0
    try:
        async with asyncio.timeout(_DRAIN_TIMEOUT):
            async for part in chunks:
                read += len(part)
                if read > _DRAIN_LIMIT:
                    return
    except (TimeoutError, httpx.HTTPError):
        pass


def _parse_error_body(body: bytes) -> tuple[str | None, str, int | str | None]:
    """(message, extra text for classification only, code) from an error body of any shape.

    OpenRouter sends `{"error": {"code", "message", "metadata": {"raw": ...}}}`; the provider's
    own words often sit in `metadata.raw`, which helps recognise a context overflow but is not
    quoted to users.
    """
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text or None), "", None
    if not isinstance(data, dict):
        return None, "", None
    error = data.get("error")
    if isinstance(error, str):
        return error, "", None
    if not isinstance(error, dict):
        message = data.get("message") or data.get("detail")
        return (message if isinstance(message, str) else None), "", None
    message = error.get("message")
    code = error.get("code")
    hint = ""
    metadata = error.get("metadata")
    if isinstance(metadata, dict) and metadata.get("raw") is not None:
        raw = metadata["raw"]
        hint = raw if isinstance(raw, str) else msgspec.json.encode(raw).decode("utf-8", "replace")
    return (
        message if isinstance(message, str) else None,
        hint,
        code if isinstance(code, int | str) and not isinstance(code, bool) else None,
    )


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
