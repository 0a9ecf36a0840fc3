"""The composition root: `create_app()` builds a configured Litestar app; nothing runs at import.

With `container.py` (which adapter serves each port), this is the only module that knows every
layer. `AuraPlugin` wires the http layer to the container in one place: the routes and their
guards, the admission limits, the dependencies the handlers ask for (as Litestar's own
`Provide`, since dependency-injector's markers confuse Litestar's signature parsing), the error
handlers, and the lifespan that opens the container's resources at startup and closes them at
shutdown.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import structlog
from litestar import Controller, Litestar, Router
from litestar.config.app import AppConfig
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins import InitPluginProtocol
from litestar.types import ASGIApp

from aura_agent import __version__
from aura_agent.application.chat_service import ChatService
from aura_agent.config import Settings, load_settings
from aura_agent.config.providers import provider_spec
from aura_agent.container import Container, resolved
from aura_agent.domain.ports import ChatModel, RateLimiter, SessionStore
from aura_agent.http.auth import API_KEY_HEADER, ApiKeyGuard, all_of, provide_tenant
from aura_agent.http.chat.routes import ChatController
from aura_agent.http.chat.sessions import SessionsController
from aura_agent.http.dependencies import STREAMING_DEPENDENCY, provide_streaming_deps
from aura_agent.http.limits import LimitProblem, Limits, limit_problem_response
from aura_agent.http.openai.routes import openai_router
from aura_agent.http.ops.health import HealthController
from aura_agent.http.ops.metrics import metrics_parts
from aura_agent.http.ops.playground import PlaygroundController
from aura_agent.http.problems import EXCEPTION_HANDLERS
from aura_agent.http.request_context import REQUEST_ID_HEADER, RequestContextMiddleware
from aura_agent.http.sse.control import StreamRegistry
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


def create_app(settings: Settings | None = None, container: Container | None = None) -> Litestar:
    """Build the app from `settings` (default: the environment) and an optional container."""
    if settings is None:
        settings = load_settings()
    settings, generated = with_development_key(settings)
    configure_logging(
        level=settings.log_level,
        log_format=settings.log_format,
        secrets=(
            *settings.api_key_table().secrets,
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
    plugin = AuraPlugin(settings, container)
    app = Litestar(
        plugins=[plugin],
        request_max_body_size=settings.max_body_bytes,  # read before plugins run
        openapi_config=OpenAPIConfig(title="Aura Agent", version=__version__, path="/schema"),
        logging_config=None,  # logging is ours (structlog), see aura_agent.logging
        debug=False,
    )
    # Litestar's `middleware=` wraps matched routes only: a 404 or 405 would get no request id,
    # no log line and no metrics. Wrapped around the app's whole ASGI handler (the router inside
    # its exception handling and CORS), they see every HTTP request and its final status.
    handler: ASGIApp = app.asgi_handler
    for middleware in reversed(plugin.outer_middleware):
        handler = middleware(handler)
    app.asgi_handler = RequestContextMiddleware(handler)
    return app


class AuraPlugin(InitPluginProtocol):
    """Everything the http layer gets from the rest of the service, set on the app's config."""

    def __init__(self, settings: Settings, container: Container) -> None:
        self.settings = settings
        self.container = container
        metrics_handlers, self.outer_middleware = metrics_parts(settings)
        self._metrics_handlers = metrics_handlers

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        api_keys = ApiKeyGuard(settings.api_key_table())
        limits = self._limits()
        authenticated = Router(
            path="/",
            route_handlers=[ChatController, SessionsController],
            guards=[all_of(api_keys, *limits.guards)],
        )
        public: list[type[Controller]] = [HealthController]
        if settings.serves_playground:
            # The page needs no key (the user types it in), so it sits outside the guard.
            public.append(PlaygroundController)
        app_config.route_handlers.extend(
            [
                *public,
                authenticated,
                openai_router(api_keys, *limits.guards),
                *self._metrics_handlers,
            ]
        )
        app_config.dependencies.update(self._dependencies(limits))
        app_config.exception_handlers.update(
            {**EXCEPTION_HANDLERS, LimitProblem: limit_problem_response}  # type: ignore[dict-item]
        )
        app_config.cors_config = CORSConfig(
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
        )
        app_config.lifespan.append(self._lifespan)
        return app_config

    def _limits(self) -> Limits:
        """This app's admission control; the rate limiter is resolved only once a limit needs it."""
        settings, container = self.settings, self.container

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

    def _dependencies(self, limits: Limits) -> dict[str, Provide]:
        """What handlers ask for by name: `settings`, `chat_model`, `session_store`, `tenant`,
        and the one cached `streaming` bundle of the streaming routes."""
        settings, container = self.settings, self.container

        async def chat_service() -> ChatService:
            service: ChatService = await resolved(container.chat_service())
            return service

        async def chat_model() -> ChatModel:
            model: ChatModel = await resolved(container.chat_model())
            return model

        async def session_store() -> SessionStore:
            store: SessionStore = await resolved(container.session_store())
            return store

        def provide_settings() -> Settings:
            return settings

        return {
            "settings": Provide(provide_settings, sync_to_thread=False, use_cache=True),
            "chat_model": Provide(chat_model),
            "session_store": Provide(session_store),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
            STREAMING_DEPENDENCY: provide_streaming_deps(settings, chat_service, limits),
        }

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Create the selected adapters up front, so a broken configuration fails at startup."""
        container, settings = self.container, self.settings
        await resolved(container.chat_model())
        await resolved(container.session_store())
        routes = settings.routes
        default = routes.get(routes.default)
        _log.info(
            "aura_agent_started",
            provider=default.provider,
            model=default.model,
            routes=list(routes.names),
            session_store=settings.session_store,
            environment=settings.aura_env,
        )
        if provider_spec(default.provider).family == "demo":
            _log.warning(
                "demo_model_active",
                detail="LLM_PROVIDER resolved to the offline demo model: replies are canned. "
                "Set OPENROUTER_API_KEY to use a real model.",
            )
        try:
            yield
        finally:
            result = container.shutdown_resources()
            if inspect.isawaitable(result):
                await result
