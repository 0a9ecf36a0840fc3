"""The Litestar dependency the streaming endpoints take: what they need, resolved once.

Litestar resolves a handler's independent dependencies concurrently: two or more in one batch
cost a task group and a task per dependency on every request, and each task start waits for an
event-loop iteration, which under load is the time it takes to relay hundreds of tokens. The
streaming endpoints are the hot path, so they take this one cached bundle instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from litestar.di import Provide

from aura_agent.application.chat_service import ChatService
from aura_agent.config import Settings
from aura_agent.http.limits import Limits

STREAMING_DEPENDENCY = "streaming"


@dataclass(frozen=True, slots=True)
class StreamingDeps:
    """The settings, the chat service and the admission limits of one app."""

    settings: Settings
    chat_service: ChatService
    limits: Limits


def provide_streaming_deps(
    settings: Settings, chat_service: Callable[[], Awaitable[ChatService]], limits: Limits
) -> Provide:
    """The `streaming` dependency: built on first use (the store may be an async resource),
    then served from Litestar's cache."""

    async def streaming() -> StreamingDeps:
        return StreamingDeps(settings=settings, chat_service=await chat_service(), limits=limits)

    return Provide(streaming, use_cache=True)
