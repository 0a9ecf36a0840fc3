"""Error bodies and headers as providers send them, read leniently into what an error needs.

Bodies differ by vendor: OpenAI `{"error": {"message", "type", "code"}}`, OpenRouter's
`metadata.raw`, Anthropic `{"type": "error", "error": {"type", "message"}}`, Ollama
`{"error": "text"}`, pydantic-style `{"message": {"detail": [...]}}` (Mistral) and plain text all
give a message to quote, extra text that only helps classification, and a code. Nothing here
raises: a body that says nothing useful gives an empty `ErrorBody`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import msgspec

__all__ = [
    "ERROR_BODY_LIMIT",
    "ErrorBody",
    "parse_error_body",
    "parse_retry_after",
    "read_bounded",
    "status_of",
]

ERROR_BODY_LIMIT: Final = 16 * 1024  # enough for any JSON error; an HTML error page is cut short
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


class ErrorBody(msgspec.Struct, frozen=True):
    """What an error body says: a message to quote, text that only classifies, a code."""

    message: str | None = None
    hint: str = ""
    code: int | str | None = None


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
