"""The composition root: `create_app()` builds a configured Litestar app; nothing runs at import."""

from __future__ import annotations

import secrets

import msgspec
import structlog
from litestar import Controller, Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig

from aura_agent import __version__
from aura_agent.config import Settings, load_settings
from aura_agent.container import Container
from aura_agent.http.auth import API_KEY_HEADER, ApiKeyGuard
from aura_agent.http.container_plugin import ContainerPlugin
from aura_agent.http.controllers import ChatController, HealthController
from aura_agent.http.playground import PlaygroundController
from aura_agent.http.problems import EXCEPTION_HANDLERS
from aura_agent.http.request_context import REQUEST_ID_HEADER, RequestContextMiddleware
from aura_agent.http.sessions_controller import SessionsController
from aura_agent.logging import configure_logging

_log = structlog.get_logger("aura_agent.startup")


def with_development_key(settings: Settings) -> tuple[Settings, bool]:
    """Outside production, make a random API key for this run when none is configured.

    Returns the settings and whether a key was generated (so the caller can print it once).
    """
    if settings.internal_api_key or settings.is_production:
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
        secrets=(settings.internal_api_key, *settings.routes.secrets),
    )
    if generated:
        print(development_key_banner(settings), flush=True)
    if container is None:
        container = Container(settings=settings)
    else:
        container.settings.override(settings)
    authenticated = Router(
        path="/",
        route_handlers=[ChatController, SessionsController],
        guards=[ApiKeyGuard(settings.internal_api_key or "")],
    )
    public: list[type[Controller]] = [HealthController]
    if settings.serves_playground:
        # The page needs no key (the user types it in), so it sits outside the guard.
        public.append(PlaygroundController)
    return Litestar(
        route_handlers=[*public, authenticated],
        plugins=[ContainerPlugin(container)],
        middleware=[RequestContextMiddleware],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=[API_KEY_HEADER, "content-type", REQUEST_ID_HEADER, "authorization"],
            expose_headers=["x-session-id", REQUEST_ID_HEADER],
            max_age=600,
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Aura Agent", version=__version__, path="/schema"),
        logging_config=None,  # logging is ours (structlog), see aura_agent.logging
        debug=False,
    )
