"""HTTP routes to read and forget a conversation: `GET` / `DELETE /sessions/{session_id}`.

They let a frontend restore a chat after a reload (on any instance, when sessions live in Redis)
and let a user erase their history. Both sit behind the API key guard like `/chat`.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath

from aura_agent.domain.ports import SessionStore
from aura_agent.http.auth import scoped_session_id
from aura_agent.http.chat.usage import UsageBody, usage_body
from aura_agent.http.problems import RequestProblem, documented_problems
from aura_agent.http.validation import SESSION_ID_RULE, is_session_id

_NOT_FOUND = "no conversation is stored for this session_id (it may have expired or been deleted)"


class SessionMessage(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """One stored message, as the Chat Completions wire names it; replies carry their usage."""

    role: str
    content: str
    usage: UsageBody | None = None


class SessionHistory(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `GET /sessions/{session_id}`: the stored history, oldest first."""

    session_id: str
    messages: list[SessionMessage]


def _problems(not_found: str) -> dict[int, ResponseSpec]:
    """The problem details both routes answer, documented as `POST /chat` documents its own."""
    return documented_problems(
        (
            (400, f"The session_id {SESSION_ID_RULE}"),
            (401, "The x-api-key header is missing or wrong"),
            (404, not_found),
            (429, "This key is over its rate limit; retry after Retry-After"),
            (503, "The session store is unavailable; retry after Retry-After seconds"),
        )
    )


def _checked(session_id: str) -> str:
    """The same rule as `POST /chat`, so an id is accepted here exactly when it could exist."""
    if not is_session_id(session_id):
        raise RequestProblem(f"invalid session_id: {SESSION_ID_RULE}", field="session_id")
    return session_id


class SessionsController(Controller):
    """Read or forget one conversation; store outages become 503 via the problem handlers."""

    path = "/sessions"

    @get(
        "/{session_id:str}",
        summary="Read a conversation's stored history",
        responses=_problems("No conversation is stored for this session_id (for this key)"),
    )
    async def read(
        self,
        session_id: FromPath[str],
        session_store: NamedDependency[SessionStore],
        tenant: NamedDependency[str],
    ) -> SessionHistory:
        """404 for an unknown session: stores keep no empty histories, so empty means unknown.
        Another tenant's session is unknown too: the id is looked up in the caller's namespace."""
        history = await session_store.load(scoped_session_id(tenant, _checked(session_id)))
        if not history:
            raise RequestProblem(_NOT_FOUND, status_code=404, field="session_id")
        return SessionHistory(
            session_id=session_id,
            messages=[
                SessionMessage(
                    role=m.role.value,
                    content=m.content,
                    usage=None if m.usage is None else usage_body(m.usage),
                )
                for m in history
            ],
        )

    @delete(
        "/{session_id:str}",
        status_code=204,
        summary="Forget a conversation",
        responses=_problems("There was no conversation to delete for this session_id"),
    )
    async def forget(
        self,
        session_id: FromPath[str],
        session_store: NamedDependency[SessionStore],
        tenant: NamedDependency[str],
    ) -> None:
        """204 once gone; 404 when there was nothing to delete, so typos are not silent."""
        if not await session_store.delete(scoped_session_id(tenant, _checked(session_id))):
            raise RequestProblem(_NOT_FOUND, status_code=404, field="session_id")
