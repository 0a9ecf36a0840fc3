"""Unauthenticated probes: liveness (`/health`, the seed's contract) and readiness (`/ready`)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Response

from aura_agent import __version__
from aura_agent.config import Settings
from aura_agent.domain.errors import AuraError
from aura_agent.domain.ports import ChatModel, SessionStore

READINESS_TIMEOUT_SECONDS = 3.0


class HealthResponse(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `GET /health`, as in the original service."""

    status: str
    model: str
    version: str


class ReadinessResponse(msgspec.Struct, kw_only=True, frozen=True):
    """Body of `GET /ready`: one entry per dependency, "ok" or what failed."""

    status: str
    checks: dict[str, str]


class HealthController(Controller):
    """Unauthenticated probes for load balancers and orchestrators."""

    @get("/health", summary="Liveness: the process is up")
    async def health(self, settings: NamedDependency[Settings]) -> HealthResponse:
        """Cheap and dependency-free, so a slow provider never makes the process look dead."""
        routes = settings.routes
        model = routes.get(routes.default).model
        return HealthResponse(status="healthy", model=model, version=__version__)

    @get("/ready", summary="Readiness: every dependency answers")
    async def ready(
        self,
        chat_model: NamedDependency[ChatModel],
        session_store: NamedDependency[SessionStore],
    ) -> Response[ReadinessResponse]:
        """Check the model provider and the session store concurrently, each with a time limit."""
        names = ("model", "session_store")
        results = await asyncio.gather(
            _probe(chat_model.check()), _probe(session_store.check()), return_exceptions=False
        )
        checks = dict(zip(names, results, strict=True))
        healthy = all(result == "ok" for result in results)
        return Response(
            ReadinessResponse(status="ready" if healthy else "unavailable", checks=checks),
            status_code=200 if healthy else 503,
        )


async def _probe(check: Any) -> str:
    try:
        await asyncio.wait_for(check, READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"failed: no answer within {READINESS_TIMEOUT_SECONDS:g} s"
    except AuraError as exc:
        return f"failed: {exc}"
    return "ok"
