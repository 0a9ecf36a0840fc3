"""Bridges the dependency-injector container into Litestar's own dependency injection.

dependency-injector's `@inject` markers confuse Litestar's signature parsing, so handlers ask for
plain names (`settings`, `chat_model`, `session_store`) and this plugin provides them from the
container; it also opens and closes the container's resources with the app. (The streaming
routes take one `streaming` bundle instead, see `http.stream_deps`.)
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol

from aura_agent.config import Settings
from aura_agent.container import Container, resolved
from aura_agent.domain.ports import ChatModel, SessionStore

_log = structlog.get_logger("aura_agent.startup")


class ContainerPlugin(InitPluginProtocol):
    """Registers the container's services as Litestar dependencies and runs its lifecycle."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        container = self.container

        async def provide_chat_model() -> ChatModel:
            model: ChatModel = await resolved(container.chat_model())
            return model

        async def provide_session_store() -> SessionStore:
            store: SessionStore = await resolved(container.session_store())
            return store

        def provide_settings() -> Settings:
            settings: Settings = container.settings()
            return settings

        app_config.dependencies.update(
            {
                "settings": Provide(provide_settings, sync_to_thread=False, use_cache=True),
                "chat_model": Provide(provide_chat_model),
                "session_store": Provide(provide_session_store),
            }
        )
        app_config.lifespan.append(self._lifespan)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Create the selected adapters up front, so a broken configuration fails at startup."""
        container = self.container
        settings: Settings = container.settings()
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
        if default.provider == "demo":
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
