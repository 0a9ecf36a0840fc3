"""One error tree for everything the domain can report.

    AuraError
     +-- ChatModelError            the language model failed (carries provider, status, retryable)
     |    +-- ProviderAuthError        the provider refused our credentials (401, 403)
     |    +-- ProviderPaymentRequired  the provider account is out of credit (402)
     |    +-- ProviderRateLimited      429; carries retry_after seconds when known
     |    +-- ProviderOverloaded       the provider is overloaded (529, "overloaded" errors)
     |    +-- ProviderBadRequest       the provider rejected the request (400, 413, 422)
     |    |    +-- ContextTooLong      the prompt does not fit the model's context window
     |    +-- ProviderTimeout          connect, first-token or idle timeout (or 408 from upstream)
     |    +-- ProviderUnavailable      cannot connect, or 5xx
     |    +-- ProviderStreamError      a broken stream: malformed chunk, in-band error, cut short
     |    +-- AllRoutesFailed          every route of a request failed before its first token
     +-- StoreUnavailable          a backing store cannot be reached right now (retry later)
     |    +-- SessionStoreUnavailable  ... the session store (also a SessionStoreError)
     |    +-- LimiterUnavailable       ... the store behind the rate and stream limits
     +-- SessionStoreError         the session store failed
     |    +-- SessionStoreUnavailable
     +-- LimiterError              the rate limiter's store failed
     |    +-- LimiterUnavailable
     +-- TurnNotSavedError         the reply streamed but could not be remembered

Messages are written for the end user: they never contain keys, URLs or stack traces, so the
http layer may show `str(error)` as it is.
"""

from __future__ import annotations


class AuraError(Exception):
    """Base of every error the domain raises on purpose."""


class ChatModelError(AuraError):
    """The language model call failed; `retryable` says whether trying again may help."""

    retryable = False

    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class ProviderAuthError(ChatModelError):
    """The provider rejected our API key; an operator must fix the configuration."""


class ProviderPaymentRequired(ChatModelError):
    """The provider account has no credit left."""


class ProviderRateLimited(ChatModelError):
    """The provider asked us to slow down."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderOverloaded(ChatModelError):
    """The provider is overloaded; trying again later (or elsewhere) may work."""

    retryable = True


class ProviderBadRequest(ChatModelError):
    """The provider refused the request itself; repeating it cannot help."""


class UnsupportedOption(ProviderBadRequest):
    """The request asked for something this provider cannot do (a tool on a text-only wire, a
    parameter it has no equivalent for); `param` names it, as the client spelled it."""

    def __init__(self, message: str, *, provider: str, param: str) -> None:
        super().__init__(message, provider=provider)
        self.param = param


class ContextTooLong(ProviderBadRequest):
    """The prompt is longer than the model's context window."""


class ProviderTimeout(ChatModelError):
    """The provider did not answer in time."""

    retryable = True


class ProviderUnavailable(ChatModelError):
    """The provider could not be reached or failed on its side."""

    retryable = True


class ProviderStreamError(ChatModelError):
    """The provider's stream broke: malformed data, an in-band error, or no proper end."""


class AllRoutesFailed(ChatModelError):
    """Every route (primary, retries and fallbacks) failed before producing a token."""

    def __init__(self, message: str, *, provider: str, last_error: ChatModelError) -> None:
        super().__init__(message, provider=provider, status=last_error.status)
        self.last_error = last_error


class StoreUnavailable(AuraError):
    """A backing store cannot be reached right now; the request may be retried later."""


class SessionStoreError(AuraError):
    """The session store failed."""


class SessionStoreUnavailable(SessionStoreError, StoreUnavailable):
    """The session store cannot be reached right now."""


class LimiterError(AuraError):
    """The store behind the rate and stream limits failed."""


class LimiterUnavailable(LimiterError, StoreUnavailable):
    """The store behind the rate and stream limits cannot be reached right now."""


class TurnNotSavedError(AuraError):
    """The reply was streamed but the turn could not be stored; the client should retry."""
