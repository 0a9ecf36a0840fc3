"""A bounded in-process session store, for development and single-replica deployments."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aura_agent.domain.models import Message


@dataclass(slots=True)
class _Session:
    messages: list[Message]
    touched: float


class MemorySessionStore:
    """Conversation histories in a dict, bounded in every direction so memory cannot grow forever.

    * at most `max_sessions` sessions: beyond that the least recently used one is evicted;
    * a session untouched (neither loaded nor written) for `ttl_seconds` is forgotten;
    * a history keeps only its newest `max_messages` messages, rounded down to an even count so
      whole user/assistant turns are kept (every turn adds exactly two messages).

    Concurrency: no method awaits between reading and writing the dict, so each call runs to
    completion on the event loop without interleaving; concurrent requests on one session can
    therefore never lose a turn or split one. This holds for one event loop only (not threads).
    """

    def __init__(
        self,
        *,
        max_sessions: int,
        max_messages: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if max_messages < 2:
            raise ValueError("max_messages must be at least 2 (one user/assistant turn)")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._max_sessions = max_sessions
        self._keep = max_messages - max_messages % 2
        self._ttl = ttl_seconds
        self._clock = clock
        # Ordered from least to most recently touched: eviction and expiry both pop the front.
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        """Number of sessions held, expired ones included until the next call purges them."""
        return len(self._sessions)

    async def load(self, session_id: str) -> list[Message]:
        """Return a copy of the history, oldest first, so callers cannot change what is stored."""
        session = self._touch(session_id)
        return [] if session is None else list(session.messages)

    async def append_turn(self, session_id: str, user: Message, assistant: Message) -> None:
        """Append the turn, trim to the newest whole turns, and evict beyond `max_sessions`."""
        session = self._touch(session_id)
        if session is None:
            session = _Session(messages=[], touched=self._clock())
            self._sessions[session_id] = session
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
        session.messages += (user, assistant)
        if len(session.messages) > self._keep:
            del session.messages[: -self._keep]

    async def delete(self, session_id: str) -> bool:
        """Forget a session; True if it existed and had not expired."""
        self._purge_expired()
        return self._sessions.pop(session_id, None) is not None

    async def check(self) -> None:
        """Memory is always available."""

    def _touch(self, session_id: str) -> _Session | None:
        """Return the live session (marked as just used), or None; drops expired sessions."""
        now = self._purge_expired()
        session = self._sessions.get(session_id)
        if session is not None:
            session.touched = now
            self._sessions.move_to_end(session_id)
        return session

    def _purge_expired(self) -> float:
        """Drop sessions idle for `ttl_seconds`; they sit at the front, so this is cheap."""
        now = self._clock()
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if now - oldest.touched < self._ttl:
                break
            sessions.popitem(last=False)
        return now
