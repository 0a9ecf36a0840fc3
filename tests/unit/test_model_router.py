"""Retries and fallbacks before the first token, never after; the time budget; RouteServed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from aura_agent.application.routing import ModelRoute, ModelRouter, RetryPolicy
from aura_agent.domain.errors import (
    AllRoutesFailed,
    ChatModelError,
    ContextTooLong,
    ProviderAuthError,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderUnavailable,
)
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    RouteServed,
    StreamEnd,
    TextDelta,
)
from tests.support import ScriptedModel

PROMPT = [Message(role=Role.USER, content="hi")]


class FlakyModel(ScriptedModel):
    """Fails with the given errors on its first calls, then streams normally."""

    def __init__(self, errors: Sequence[ChatModelError], tokens: Sequence[str] = ("ok",)) -> None:
        super().__init__(tokens)
        self.errors = list(errors)

    async def stream(self, messages, options):  # type: ignore[no-untyped-def,override]
        self.calls.append((list(messages), options))
        if self.errors:
            raise self.errors.pop(0)
        for token in self.tokens:
            yield TextDelta(token)
        yield StreamEnd(finish_reason="stop")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _router(
    routes: list[ModelRoute], default: str, time: FakeTime, budget: float = 20.0
) -> ModelRouter:
    return ModelRouter(
        routes,
        default=default,
        policy=RetryPolicy(backoff_base_seconds=0.5, backoff_max_seconds=4, budget_seconds=budget),
        sleep=time.sleep,
        clock=time.clock,
        jitter=lambda: 1.0,
    )


async def _collect(router: ModelRouter, model: str | None = None) -> list[ChatEvent]:
    return [event async for event in router.stream(PROMPT, GenerationOptions(model=model))]


def _unavailable() -> ProviderUnavailable:
    return ProviderUnavailable("upstream 503", provider="p", status=503)


async def test_the_default_route_serves_and_is_reported() -> None:
    time = FakeTime()
    primary = ScriptedModel(["a", "b"])
    router = _router([ModelRoute(name="main", model=primary)], "main", time)
    events = await _collect(router)
    assert events[0] == RouteServed(
        route="main", provider="scripted", model="scripted-model", attempts=1
    )
    assert events[1:] == [TextDelta("a"), TextDelta("b"), StreamEnd(finish_reason="stop")]
    assert primary.calls[0][1].model is None, "the vendor adapter gets its own model id"


async def test_a_retryable_error_is_retried_with_backoff() -> None:
    time = FakeTime()
    flaky = FlakyModel([_unavailable()])
    router = _router([ModelRoute(name="main", model=flaky, max_retries=2)], "main", time)
    events = await _collect(router)
    assert time.sleeps == [0.5]
    assert isinstance(events[0], RouteServed)
    assert events[0].attempts == 2


async def test_retry_after_is_honoured() -> None:
    time = FakeTime()
    flaky = FlakyModel([ProviderRateLimited("slow", provider="p", retry_after=3.0)])
    router = _router([ModelRoute(name="main", model=flaky, max_retries=1)], "main", time)
    await _collect(router)
    assert time.sleeps == [3.0]


async def test_backoff_grows_exponentially() -> None:
    time = FakeTime()
    flaky = FlakyModel([_unavailable(), _unavailable(), _unavailable()])
    router = _router([ModelRoute(name="main", model=flaky, max_retries=3)], "main", time)
    await _collect(router)
    assert time.sleeps == [0.5, 1.0, 2.0]


async def test_fallback_after_retries_are_spent() -> None:
    time = FakeTime()
    primary = FlakyModel([_unavailable(), _unavailable()])
    backup = ScriptedModel(["from backup"])
    router = _router(
        [
            ModelRoute(name="main", model=primary, fallbacks=("backup",), max_retries=1),
            ModelRoute(name="backup", model=backup, max_retries=0),
        ],
        "main",
        time,
    )
    events = await _collect(router)
    assert isinstance(events[0], RouteServed)
    assert (events[0].route, events[0].attempts) == ("backup", 3)
    assert TextDelta("from backup") in events


async def test_a_non_retryable_error_is_neither_retried_nor_fallen_back() -> None:
    time = FakeTime()
    for error in (
        ProviderAuthError("bad key", provider="p", status=401),
        ContextTooLong("too long", provider="p", status=400),
    ):
        primary = FlakyModel([error])
        backup = ScriptedModel(["never"])
        router = _router(
            [
                ModelRoute(name="main", model=primary, fallbacks=("backup",), max_retries=3),
                ModelRoute(name="backup", model=backup),
            ],
            "main",
            time,
        )
        with pytest.raises(type(error)):
            await _collect(router)
        assert len(primary.calls) == 1
        assert not backup.calls


async def test_no_retry_or_fallback_once_a_token_was_sent() -> None:
    time = FakeTime()
    primary = ScriptedModel(["partial"], fail_with=_unavailable(), fail_after=1)
    backup = ScriptedModel(["never"])
    router = _router(
        [
            ModelRoute(name="main", model=primary, fallbacks=("backup",), max_retries=3),
            ModelRoute(name="backup", model=backup),
        ],
        "main",
        time,
    )
    seen: list[ChatEvent] = []

    async def consume() -> None:
        async for event in router.stream(PROMPT, GenerationOptions()):
            seen.append(event)

    with pytest.raises(ProviderUnavailable):
        await consume()
    assert TextDelta("partial") in seen
    assert len(primary.calls) == 1
    assert not backup.calls
    assert time.sleeps == []


async def test_all_routes_down_is_one_clear_error() -> None:
    time = FakeTime()
    router = _router(
        [
            ModelRoute(
                name="a", model=FlakyModel([_unavailable()] * 5), fallbacks=("b",), max_retries=1
            ),
            ModelRoute(
                name="b",
                model=FlakyModel([ProviderOverloaded("busy", provider="q")] * 5),
                max_retries=1,
            ),
        ],
        "a",
        time,
    )
    with pytest.raises(AllRoutesFailed) as caught:
        await _collect(router)
    message = str(caught.value)
    assert "a, b" in message
    assert "4 attempts" in message
    assert "busy" in message


async def test_the_time_budget_bounds_the_retries() -> None:
    time = FakeTime()
    flaky = FlakyModel([ProviderRateLimited("slow", provider="p", retry_after=30.0)] * 3)
    backup = ScriptedModel(["quick"])
    router = _router(
        [
            ModelRoute(name="main", model=flaky, fallbacks=("backup",), max_retries=3),
            ModelRoute(name="backup", model=backup),
        ],
        "main",
        time,
        budget=10.0,
    )
    events = await _collect(router)
    assert time.sleeps == [], "a Retry-After beyond the budget moves on instead of waiting"
    assert TextDelta("quick") in events


async def test_a_named_route_is_used() -> None:
    time = FakeTime()
    first, second = ScriptedModel(["1"]), ScriptedModel(["2"])
    router = _router(
        [ModelRoute(name="one", model=first), ModelRoute(name="two", model=second)], "one", time
    )
    assert TextDelta("2") in await _collect(router, "two")
    assert not first.calls


def test_the_default_must_exist() -> None:
    with pytest.raises(ValueError, match="nope"):
        ModelRouter([ModelRoute(name="a", model=ScriptedModel())], default="nope")
