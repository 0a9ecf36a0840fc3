"""Vendor failures turned into domain errors, shared by every HTTP model adapter.

One `ErrorMapper` per adapter instance, parametrised by the provider's name (for the error's
`provider` field) and its display label (for the message). It owns the two rules every adapter
must follow: one status-to-error table, so a 429 means the same thing whichever vendor sent it,
and one scrubber, so that upstream text quoted to users never carries a key, a URL, HTML or a
traceback.

Error bodies differ by vendor and are read leniently: OpenAI `{"error": {"message", "type",
"code"}}`, OpenRouter's `metadata.raw`, Anthropic `{"type": "error", "error": {"type",
"message"}}`, Ollama `{"error": "text"}`, pydantic-style `{"message": {"detail": [...]}}` (Mistral)
and plain text all give a message to quote and extra text that only helps classification.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import msgspec

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

__all__ = [
    "ERROR_BODY_LIMIT",
    "ErrorBody",
    "ErrorMapper",
    "display_name",
    "parse_error_body",
    "parse_retry_after",
    "read_bounded",
    "status_of",
]

ERROR_BODY_LIMIT: Final = 16 * 1024  # enough for any JSON error; an HTML error page is cut short
_DETAIL_LIMIT: Final = 200  # longest upstream text quoted in a user-facing message

# Anything that looks like a credential or a link is removed from upstream text we quote.
_SECRET_RE: Final = re.compile(r"(?i)\bbearer\s+\S+|\bsk-[A-Za-z0-9_-]{6,}")
_URL_RE: Final = re.compile(r"(?i)\b(?:https?|wss?)://\S+")
_CONTEXT_HINTS: Final = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "context size",  # llama.cpp
    "context limit",  # Anthropic: "input length and `max_tokens` exceed context limit"
    "prompt is too long",  # Anthropic
)
# Word codes (OpenAI-style `error.code`, Anthropic `error.type`) read as the status they mean.
_WORD_CODES: Final = {
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "insufficient_quota": 402,
    "billing_error": 402,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "api_error": 500,
    "overloaded": 529,
    "overloaded_error": 529,
    "timeout": 408,
    "timeout_error": 408,
}
_LABELS: Final = {
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "anthropic": "Anthropic",
    "deepseek": "DeepSeek",
    "groq": "Groq",
    "together": "Together AI",
    "mistral": "Mistral",
    "ollama": "Ollama",
    "vllm": "vLLM",
    "llamacpp": "llama.cpp",
    "lmstudio": "LM Studio",
}


def display_name(provider: str) -> str:
    """How a provider is named in user-facing messages (`openai` -> `OpenAI`)."""
    return _LABELS.get(provider.lower(), provider)


class ErrorBody(msgspec.Struct, frozen=True):
    """What an error body says: a message to quote, text that only classifies, a code."""

    message: str | None = None
    hint: str = ""
    code: int | str | None = None


class ErrorMapper:
    """Builds the domain error for every way a provider call can fail; see the module docstring."""

    __slots__ = ("label", "provider", "secrets")

    def __init__(self, *, provider: str, label: str | None = None, secrets: Iterable[str] = ()):
        self.provider = provider
        self.label = label or display_name(provider)
        # Longest first, so a key that contains another secret is replaced whole.
        self.secrets = tuple(sorted((s for s in secrets if s), key=len, reverse=True))

    # -- answers with an error status or body ---------------------------------------------------

    def http_error(self, status: int, body: bytes, retry_after: str | None) -> ChatModelError:
        """The domain error for a non-2xx answer, from its status, body and Retry-After."""
        parsed = parse_error_body(body)
        return self.for_status(
            status,
            self.clean(parsed.message),
            parsed.hint,
            retry_after=parse_retry_after(retry_after),
        )

    def json_instead_of_stream(self, body: bytes) -> ChatModelError:
        """A 200 with a JSON body: some gateways report errors this way even for streams."""
        parsed = parse_error_body(body)
        status = status_of(parsed.code)
        if status is None:
            return ProviderStreamError(
                _with_detail(f"{self.label} answered without a stream", self.clean(parsed.message)),
                provider=self.provider,
            )
        return self.for_status(status, self.clean(parsed.message), parsed.hint)

    def in_band(self, message: str | None, code: int | str | None) -> ChatModelError:
        """The domain error for a failure reported inside a 200 stream."""
        detail = self.clean(message)
        status = status_of(code)
        if status is not None:
            hint = code if isinstance(code, str) else ""
            return self.for_status(status, detail, hint, in_band=True)
        if detail is not None and "overloaded" in detail.lower():
            return ProviderOverloaded(
                _with_detail("The model is overloaded right now; try again shortly", detail),
                provider=self.provider,
            )
        return ProviderStreamError(
            _with_detail("The model stopped with an error", detail), provider=self.provider
        )

    def for_status(
        self,
        status: int,
        detail: str | None,
        hint: str = "",
        *,
        retry_after: float | None = None,
        in_band: bool = False,
    ) -> ChatModelError:
        """Map an HTTP-like status (and the upstream's words) to the domain error tree."""
        label, provider = self.label, self.provider
        text = f"{detail or ''} {hint}".lower()
        if status == 401:
            message = f"{label} rejected the API key"
            return ProviderAuthError(
                _with_detail(message, detail), provider=provider, status=status
            )
        if status == 403:
            message = f"{label} refused access to this request"
            return ProviderAuthError(
                _with_detail(message, detail), provider=provider, status=status
            )
        if status == 402:
            return ProviderPaymentRequired(
                _with_detail(f"The {label} account has run out of credits", detail),
                provider=provider,
                status=status,
            )
        if status == 408:
            return ProviderTimeout(
                _with_detail(f"{label} timed out waiting for the model", detail),
                provider=provider,
                status=status,
            )
        if status == 429:
            wait = (
                "retry later" if retry_after is None else f"retry after {math.ceil(retry_after)} s"
            )
            return ProviderRateLimited(
                _with_detail(f"{label} rate limit reached; {wait}", detail),
                provider=provider,
                status=status,
                retry_after=retry_after,
            )
        if status == 529 or (status >= 500 and "overloaded" in text):
            return ProviderOverloaded(
                _with_detail("The model is overloaded right now; try again shortly", detail),
                provider=provider,
                status=status,
            )
        if 400 <= status < 500:
            if any(h in text for h in _CONTEXT_HINTS):
                return ContextTooLong(
                    _with_detail(
                        "The conversation is too long for the model's context window", detail
                    ),
                    provider=provider,
                    status=status,
                )
            return ProviderBadRequest(
                _with_detail(f"{label} rejected the request", detail),
                provider=provider,
                status=status,
            )
        if 500 <= status < 600:
            return ProviderUnavailable(
                _with_detail(f"{label} cannot serve the model right now (HTTP {status})", detail),
                provider=provider,
                status=status,
            )
        if in_band:
            return ProviderStreamError(
                _with_detail("The model stopped with an error", detail),
                provider=provider,
                status=status,
            )
        return ProviderUnavailable(
            _with_detail(f"{label} gave an unexpected answer (HTTP {status})", detail),
            provider=provider,
            status=status,
        )

    # -- transport and stream failures ----------------------------------------------------------

    def timeout(self, exc: httpx.TimeoutException, timeout: httpx.Timeout) -> ProviderTimeout:
        """Name the httpx timeout that fired, with the configured number of seconds."""
        if isinstance(exc, httpx.ConnectTimeout):
            message = f"Could not connect to {self.label} within {_seconds(timeout.connect)}"
        elif isinstance(exc, httpx.ReadTimeout):
            message = f"No data from the model for {_seconds(timeout.read)}"
        else:
            message = f"{self.label} did not accept the request in time"
        return ProviderTimeout(message, provider=self.provider)

    def first_token_timeout(self, seconds: float) -> ProviderTimeout:
        """The model accepted the request but produced no text in time."""
        return ProviderTimeout(
            f"The model did not start answering within {seconds:g} s", provider=self.provider
        )

    def transport(self, *, started: bool) -> ChatModelError:
        """The connection failed: retryable before the first token, a broken reply after it."""
        if started:
            return ProviderStreamError(
                f"The connection to {self.label} broke in the middle of the reply",
                provider=self.provider,
            )
        return ProviderUnavailable(f"Could not reach {self.label}", provider=self.provider)

    def malformed(self, what: str = "chunk") -> ProviderStreamError:
        """A payload that does not decode as the vendor's event."""
        return ProviderStreamError(f"{self.label} sent a malformed {what}", provider=self.provider)

    def invalid_stream(self) -> ProviderStreamError:
        """The body is not an event stream at all."""
        return ProviderStreamError(
            f"{self.label} sent an invalid event stream", provider=self.provider
        )

    def ended_early(self) -> ProviderStreamError:
        """The body ended before the vendor's end-of-reply marker."""
        return ProviderStreamError(
            f"The stream ended early: {self.label} closed it before the reply was complete",
            provider=self.provider,
        )

    def probe_timeout(self, seconds: float) -> ProviderUnavailable:
        """The readiness probe got no answer in time."""
        return ProviderUnavailable(
            f"{self.label} did not answer within {seconds:g} s", provider=self.provider
        )

    def probe_failed(self, status: int) -> ChatModelError:
        """The readiness probe got a non-2xx answer."""
        if status in (401, 403):
            return ProviderAuthError(
                f"{self.label} rejected the API key", provider=self.provider, status=status
            )
        return ProviderUnavailable(
            f"{self.label} is not available (HTTP {status})", provider=self.provider, status=status
        )

    # -- scrubbing ------------------------------------------------------------------------------

    def clean(self, text: str | None) -> str | None:
        """Upstream text made safe to quote: no key, no link, one short line, never HTML."""
        if not text:
            return None
        for secret in self.secrets:
            text = text.replace(secret, "***")
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


# -- body and header parsing ------------------------------------------------------------------


async def read_bounded(resp: httpx.Response) -> bytes:
    """At most `ERROR_BODY_LIMIT` bytes of an error body; a failing read gives what we have."""
    body = bytearray()
    try:
        async for part in resp.aiter_bytes():
            body += part
            if len(body) >= ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    return bytes(body[:ERROR_BODY_LIMIT])


def parse_error_body(body: bytes) -> ErrorBody:
    """Read an error body of any known shape (see the module docstring); never raises."""
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        text = body.decode("utf-8", "replace").strip()
        return ErrorBody(text or None)
    if not isinstance(data, dict):
        return ErrorBody()
    error = data.get("error")
    if isinstance(error, str):  # Ollama, llama.cpp
        return ErrorBody(error)
    if not isinstance(error, dict):  # vLLM `{"object": "error", "message": ...}`, FastAPI `detail`
        return _message_and_hint(data.get("message") or data.get("detail"), "", data.get("code"))
    hint = ""
    metadata = error.get("metadata")  # OpenRouter: the provider's own words, to classify only
    if isinstance(metadata, dict) and metadata.get("raw") is not None:
        hint = _as_text(metadata["raw"])
    code = error.get("code")
    if code is None:
        code = error.get("type")  # Anthropic names the error kind in `type`
    return _message_and_hint(error.get("message"), hint, code)


def _message_and_hint(message: Any, hint: str, code: Any) -> ErrorBody:
    if not isinstance(code, int | str) or isinstance(code, bool):
        code = None
    if isinstance(message, str):
        return ErrorBody(message, hint, code)
    if message is not None:  # a structured message (Mistral's validation errors): classify only
        hint = f"{hint} {_as_text(message)}".strip()
    return ErrorBody(None, hint, code)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode("utf-8", "replace")


def parse_retry_after(value: str | None) -> float | None:
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


def status_of(code: int | str | None) -> int | None:
    """An HTTP-like status from an error code that may be a number, a numeric string or a word."""
    if isinstance(code, int):
        return code
    if isinstance(code, str):
        if code.isdigit():
            return int(code)
        return _WORD_CODES.get(code.lower())
    return None


def _with_detail(message: str, detail: str | None) -> str:
    return f"{message} ({detail})" if detail else message


def _seconds(value: float | None) -> str:
    return "too long" if value is None else f"{value:g} s"
