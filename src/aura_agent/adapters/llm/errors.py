"""Vendor failures turned into domain errors, shared by every HTTP model adapter.

One `ErrorMapper` per adapter instance, parametrised by the provider's name (for the error's
`provider` field) and its label (for the message), both from the provider's row in the config.
It owns the rule every adapter must follow: one status-to-error table, so a 429 means the same
thing whichever vendor sent it. Bodies are read by `error_bodies`; quoted text is cleaned by
`scrub`, so it never carries a key, a URL, HTML or a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

import httpx

from aura_agent.adapters.llm.error_bodies import parse_error_body, parse_retry_after, status_of
from aura_agent.adapters.llm.scrub import Scrubber
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

__all__ = ["ErrorMapper"]

_CONTEXT_HINTS: Final = (
    "context length",
    "context_length",
    "maximum context",
    "context window",
    "context size",  # llama.cpp
    "context limit",  # Anthropic: "input length and `max_tokens` exceed context limit"
    "prompt is too long",  # Anthropic
)


class ErrorMapper:
    """Builds the domain error for every way a provider call can fail; see the module docstring."""

    __slots__ = ("clean", "label", "provider")

    def __init__(self, *, provider: str, label: str, secrets: Iterable[str] = ()) -> None:
        self.provider = provider
        self.label = label
        self.clean = Scrubber(secrets).clean
        """Upstream text made safe to quote (see `scrub`)."""

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


def _with_detail(message: str, detail: str | None) -> str:
    return f"{message} ({detail})" if detail else message


def _seconds(value: float | None) -> str:
    return "too long" if value is None else f"{value:g} s"
