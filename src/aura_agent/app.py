"""The composition root: `create_app()` builds a configured Litestar app; nothing runs at import."""

from __future__ import annotations

import secrets

import msgspec
import structlog
from litestar import Controller, Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp

from aura_agent import __version__
from aura_agent.application.chat_service import ChatService
from aura_agent.config import Settings, load_settings
from aura_agent.container import Container, resolved
from aura_agent.domain.ports import RateLimiter
from aura_agent.http.auth import API_KEY_HEADER, ApiKeyGuard
from aura_agent.http.container_plugin import ContainerPlugin
from aura_agent.http.controllers import ChatController, HealthController
from aura_agent.http.guards import all_of
from aura_agent.http.limits import LimitProblem, Limits, limit_problem_response
from aura_agent.http.metrics import metrics_parts
from aura_agent.http.openai_api import openai_router
from aura_agent.http.playground import PlaygroundController
from aura_agent.http.problems import EXCEPTION_HANDLERS
from aura_agent.http.request_context import REQUEST_ID_HEADER, RequestContextMiddleware
from aura_agent.http.sessions_controller import SessionsController
from aura_agent.http.stream_control import StreamRegistry
from aura_agent.http.stream_deps import STREAMING_DEPENDENCY, provide_streaming_deps
from aura_agent.http.tenancy import provide_tenant
from aura_agent.logging import configure_logging

_log = structlog.get_logger("aura_agent.startup")


def with_development_key(settings: Settings) -> tuple[Settings, bool]:
    """Outside production, make a random API key for this run when none is configured.

    Returns the settings and whether a key was generated (so the caller can print it once).
    """
    if settings.has_api_keys or settings.is_production:
        return settings, False
    key = secrets.token_urlsafe(24)
    return msgspec.structs.replace(settings, internal_api_key=key), True


def development_key_banner(settings: Settings) -> str:
    """The console message that hands a generated key to the developer, ready to paste."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    return (
        "\n"
        "  No INTERNAL_API_KEY is set, so this run uses a random key (development only):\n\n"
        f"    {settings.internal_api_key}\n\n"
        "  Try it:\n\n"
        f"    curl -N http://{host}:{settings.port}/chat \\\n"
        f"      -H 'x-api-key: {settings.internal_api_key}' \\\n"
        "      -H 'Content-Type: application/json' \\\n"
        '      -d \'{"message": "Hello!"}\'\n'
    )


def _limits(settings: Settings, container: Container) -> Limits:
    """This app's admission control; the rate limiter is resolved only once a limit needs it."""

    async def rate_limiter() -> RateLimiter:
        limiter: RateLimiter = await resolved(container.rate_limiter())
        return limiter

    registry = StreamRegistry(
        max_streams=settings.max_concurrent_streams,
        total_timeout=settings.upstream_total_timeout,
        grace_seconds=settings.shutdown_grace_seconds,
    )
    return Limits(
        registry=registry,
        rate_limiter=rate_limiter,
        requests_per_minute=settings.rate_limit_per_minute,
        streams_per_key=settings.max_streams_per_key,
    )


def create_app(settings: Settings | None = None, container: Container | None = None) -> Litestar:
    """Build the app from `settings` (default: the environment) and an optional container."""
    if settings is None:
        settings = load_settings()
    settings, generated = with_development_key(settings)
    key_table = settings.api_key_table()
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        secrets=(
            *key_table.secrets,
            settings.metrics_api_key,
            *settings.routes.secrets,
        ),
    )
    if generated:
        print(development_key_banner(settings), flush=True)
    if container is None:
        container = Container(settings=settings)
    else:
        container.settings.override(settings)
    api_keys = ApiKeyGuard(key_table)
    limits = _limits(settings, container)

    async def chat_service() -> ChatService:
        service: ChatService = await resolved(container.chat_service())
        return service

    authenticated = Router(
        path="/",
        route_handlers=[ChatController, SessionsController],
        guards=[all_of(api_keys, *limits.guards)],
    )
    metrics_handlers, metrics_middleware = metrics_parts(settings)
    public: list[type[Controller]] = [HealthController]
    if settings.serves_playground:
        # The page needs no key (the user types it in), so it sits outside the guard.
        public.append(PlaygroundController)
    app = Litestar(
        route_handlers=[
            *public,
            authenticated,
            openai_router(api_keys, *limits.guards),
            *metrics_handlers,
        ],
        plugins=[ContainerPlugin(container)],
        dependencies={
            "tenant": Provide(provide_tenant, sync_to_thread=False),
            STREAMING_DEPENDENCY: provide_streaming_deps(settings, chat_service, limits),
        },
        exception_handlers={
            **EXCEPTION_HANDLERS,  # type: ignore[dict-item]
            LimitProblem: limit_problem_response,
        },
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[
                API_KEY_HEADER,
                "content-type",
                REQUEST_ID_HEADER,
                "authorization",
                "x-session-id",
            ],
            expose_headers=["x-session-id", REQUEST_ID_HEADER],
            max_age=600,
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Aura Agent", version=__version__, path="/schema"),
        logging_config=None,  # logging is ours (structlog), see aura_agent.logging
        debug=False,
    )
    # Litestar's `middleware=` wraps matched routes only: a 404 or 405 would get no request id,
    # no log line and no metrics. Wrapped around the app's whole ASGI handler (the router inside
    # its exception handling and CORS), they see every HTTP request and its final status.
    handler: ASGIApp = app.asgi_handler
    for middleware in reversed(metrics_middleware):
        handler = middleware(handler)
    app.asgi_handler = RequestContextMiddleware(handler)
    return app
