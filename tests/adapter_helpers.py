"""Shared scaffolding for the `ChatModel` adapter tests: draining a stream, and the text in it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from aura_agent.config.providers import provider_spec
from aura_agent.domain.errors import ChatModelError
from aura_agent.domain.models import ChatEvent, GenerationOptions, Message, TextDelta
from aura_agent.domain.ports import ChatModel

NO_OPTIONS = GenerationOptions()


async def stream_events(
    model: ChatModel, messages: Sequence[Message], options: GenerationOptions = NO_OPTIONS
) -> list[ChatEvent]:
    """Every event the model yields for one request."""
    return [event async for event in model.stream(messages, options)]


async def stream_until_error(
    model: ChatModel, messages: Sequence[Message], options: GenerationOptions = NO_OPTIONS
) -> tuple[list[ChatEvent], ChatModelError]:
    """The events yielded before the stream failed, and the failure."""
    events: list[ChatEvent] = []

    async def consume() -> None:
        async for event in model.stream(messages, options):
            events.append(event)

    with pytest.raises(ChatModelError) as info:
        await consume()
    return events, info.value


def texts(events: list[ChatEvent]) -> list[str]:
    """The text of every `TextDelta`, in order."""
    return [e.text for e in events if isinstance(e, TextDelta)]


def provider_row(name: str) -> dict[str, str]:
    """The `provider` and `label` keywords the container gives an adapter, from `name`'s row
    in the provider table."""
    spec = provider_spec(name)
    return {"provider": spec.name, "label": spec.label}
