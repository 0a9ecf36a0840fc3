"""The ports of the hexagon: where replies come from, where conversations are kept, and who
may ask for how much."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from aura_agent.domain.models import ChatEvent, GenerationOptions, Message


@runtime_checkable
class ChatModel(Protocol):
    """A language model that streams a reply to a conversation.

    `stream` yields `TextDelta`s, at most one `Usage`, then exactly one `StreamEnd`, or raises a
    `ChatModelError`. Cancelling the iteration must release the upstream request at once, because
    providers bill until the connection is closed.
    """

    @property
    def provider(self) -> str:
        """Short provider name for logs and errors (e.g. `openrouter`)."""
        ...

    @property
    def default_model(self) -> str:
        """The model used when a request names none."""
        ...

    def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[ChatEvent]:
        """Stream the reply to `messages`."""
        ...

    async def check(self) -> None:
        """Raise a `ChatModelError` if the provider cannot be reached; used by readiness probes."""
        ...


@runtime_checkable
class SessionStore(Protocol):
    """Conversation histories keyed by session id.

    Ids reaching a store are already validated and scoped to their tenant by the http layer:
    `[A-Za-z0-9_-]{1,128}`, optionally prefixed by `<tenant>/` (tenant `[A-Za-z0-9_-]{1,64}`).
    """

    async def load(self, session_id: str) -> list[Message]:
        """Return the history of a session, oldest first; empty for an unknown session."""
        ...

    async def append_turn(self, session_id: str, user: Message, assistant: Message) -> None:
        """Append both messages atomically: both land, or neither does."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Forget a session; True if it existed."""
        ...

    async def check(self) -> None:
        """Raise a `SessionStoreError` if the store cannot serve requests."""
        ...


@runtime_checkable
class RateLimiter(Protocol):
    """Per-tenant limits: requests per minute and concurrent streams, each off when its limit is 0.

    Adapters hold the limits; one shared by every instance (Redis) enforces them across the
    deployment. Failures to reach the backing store raise `LimiterUnavailable`, other store
    failures `LimiterError`.
    """

    async def hit(self, tenant: str) -> float:
        """Count one request of `tenant`: 0 when admitted, else the seconds until one would be
        (a refused request is not counted)."""
        ...

    async def acquire_stream(self, tenant: str, stream_id: str) -> bool:
        """Take one of `tenant`'s concurrent-stream slots for `stream_id` (a unique id); False at
        the limit."""
        ...

    async def release_stream(self, tenant: str, stream_id: str) -> None:
        """Give the slot of `stream_id` back; releasing twice, or an unknown id, is harmless."""
        ...
