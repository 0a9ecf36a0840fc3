"""The offline demo model: lets a new user see the service stream with no provider configured."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    Role,
    StreamEnd,
    TextDelta,
    Usage,
)

_WORDS = re.compile(r"\S+\s*|\s+")
_ECHO_LIMIT = 200


def demo_reply(messages: Sequence[Message]) -> str:
    """A reply that says plainly what it is and how to get a real model."""
    last_user = next((m.content for m in reversed(messages) if m.role is Role.USER), "")
    echoed = " ".join(last_user.split())
    if len(echoed) > _ECHO_LIMIT:
        echoed = echoed[:_ECHO_LIMIT] + "..."
    earlier_turns = sum(1 for m in messages if m.role is Role.ASSISTANT)
    return (
        "[offline demo] This reply comes from Aura Agent's built-in demo model, not from a real "
        f'language model. You said: "{echoed}". '
        f"This conversation has {earlier_turns} earlier turn(s) in memory. "
        "To talk to a real model, set OPENROUTER_API_KEY (and optionally MODEL_NAME) in .env "
        "and restart the service."
    )


class DemoChatModel:
    """Streams `demo_reply` word by word, with a small pause so the streaming is visible."""

    def __init__(self, *, model: str, token_delay_seconds: float = 0.025) -> None:
        self._model = model
        self._token_delay = token_delay_seconds

    @property
    def provider(self) -> str:
        """Provider name for logs."""
        return "demo"

    @property
    def default_model(self) -> str:
        """The name the demo answers under (its route's model)."""
        return self._model

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        """Yield the demo reply one word at a time, then usage and the end."""
        words = _WORDS.findall(demo_reply(messages))
        truncated = options.max_tokens is not None and options.max_tokens < len(words)
        if truncated:
            words = words[: options.max_tokens]
        for word in words:
            if self._token_delay:
                await asyncio.sleep(self._token_delay)
            yield TextDelta(word)
        prompt_tokens = sum(len(m.content) // 4 + 1 for m in messages)
        yield Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=len(words),
            total_tokens=prompt_tokens + len(words),
        )
        yield StreamEnd(finish_reason="length" if truncated else "stop")

    async def check(self) -> None:
        """The demo is always available."""
