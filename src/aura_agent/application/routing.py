"""Routing a request to a named model, with retries and fallbacks before the first token.

`ModelRouter` is itself a `ChatModel`, so the chat service does not know routing exists. Rules:

* a request names a route (or gets the default); its fallbacks are tried in order after it;
* a retryable failure (connect error, timeout, 429, 5xx, overloaded) is retried on the same
  route with exponential backoff and jitter, honouring Retry-After, within one time budget for
  the whole request; then the next route is tried;
* a non-retryable failure (bad credentials, bad request, context too long) ends the request;
* once a token has been yielded, nothing is retried: the error goes to the client as it is.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence

import msgspec

from aura_agent.domain.errors import AllRoutesFailed, ChatModelError
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    RouteServed,
    TextDelta,
    ToolCallDelta,
)
from aura_agent.domain.ports import ChatModel


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A named route: the adapter that serves it and what to try when it fails."""

    name: str
    model: ChatModel
    fallbacks: tuple[str, ...] = ()
    max_retries: int = 1


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Backoff between attempts: base * 2**n with jitter, capped; all within `budget_seconds`."""

    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 8.0
    budget_seconds: float = 20.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """Seconds to wait before retry number `attempt` (0-based); `jitter` is in [0, 1)."""
        backoff = min(self.backoff_max_seconds, self.backoff_base_seconds * (1 << attempt))
        backoff *= 0.5 + jitter / 2
        return max(backoff, retry_after or 0.0)


class ModelRouter:
    """A `ChatModel` over named routes."""

    def __init__(
        self,
        routes: Sequence[ModelRoute],
        *,
        default: str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._routes: Mapping[str, ModelRoute] = {route.name: route for route in routes}
        if default not in self._routes:
            raise ValueError(f"default route {default!r} is not among the routes")
        self._default = default
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    @property
    def provider(self) -> str:
        """The default route's provider (the router itself is not a vendor)."""
        return self._routes[self._default].model.provider

    @property
    def default_model(self) -> str:
        """The default route's name."""
        return self._default

    def route(self, name: str | None) -> ModelRoute:
        """The route called `name`, or the default one."""
        return self._routes[name or self._default]

    def chain(self, name: str | None) -> list[ModelRoute]:
        """The route and its fallbacks, in the order they are tried."""
        first = self.route(name)
        return [first, *(self._routes[fallback] for fallback in first.fallbacks)]

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream from the first route of the chain that produces a token (or a tool call)."""
        deadline = self._clock() + self._policy.budget_seconds
        vendor_options = msgspec.structs.replace(options, model=None)
        attempts = 0
        last_error: ChatModelError | None = None
        tried: list[str] = []
        for route in self.chain(options.model):
            tried.append(route.name)
            for retry in range(route.max_retries + 1):
                attempts += 1
                started = False
                try:
                    async for event in route.model.stream(messages, vendor_options):
                        if not started and (
                            type(event) is TextDelta or type(event) is ToolCallDelta
                        ):
                            started = True
                            yield RouteServed(
                                route=route.name,
                                provider=route.model.provider,
                                model=route.model.default_model,
                                attempts=attempts,
                            )
                        yield event
                    return
                except ChatModelError as exc:
                    if started or not exc.retryable:
                        raise
                    last_error = exc
                    if retry == route.max_retries:
                        break
                    delay = self._policy.delay(retry, _retry_after(exc), self._jitter())
                    if self._clock() + delay > deadline:
                        break
                    await self._sleep(delay)
            if self._clock() >= deadline:
                break
        assert last_error is not None
        if len(tried) == 1 and attempts == 1:
            raise last_error
        raise AllRoutesFailed(
            f"every configured model failed ({', '.join(tried)}; {attempts} attempts); "
            f"last error: {last_error}",
            provider=last_error.provider,
            last_error=last_error,
        ) from last_error

    async def check(self) -> None:
        """The default route's provider answers (readiness)."""
        await self._routes[self._default].model.check()


def _retry_after(error: ChatModelError) -> float | None:
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None
