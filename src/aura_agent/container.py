"""The dependency-injector container: which adapter serves each port, chosen from settings.

Adapters are Singletons (one per app); the shared HTTP and Redis clients are Resources, created
at startup and closed at shutdown, because streamed bodies outlive any per-request scope.
`ChatService` is a Factory, so a test's `override()` takes effect on the next request.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import httpx
from dependency_injector import containers, providers

from aura_agent.adapters.http_client.client import build_client
from aura_agent.adapters.llm.base import Endpoint
from aura_agent.adapters.llm.demo import DemoChatModel
from aura_agent.adapters.rate_limit.memory import MemoryRateLimiter
from aura_agent.adapters.session_store.memory import MemorySessionStore
from aura_agent.application.chat_service import ChatService
from aura_agent.application.routing import ModelRoute, ModelRouter, RetryPolicy
from aura_agent.config import Settings
from aura_agent.config.providers import provider_spec
from aura_agent.config.routes import Route
from aura_agent.domain.ports import ChatModel


async def resolved(provided: Any) -> Any:
    """The value of a provider call: providers that depend on an async resource (the HTTP and
    Redis clients) return awaitables, the others return values."""
    return await provided if inspect.isawaitable(provided) else provided


async def _http_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The shared upstream client for the app's lifetime, closed at shutdown."""
    client = build_client(
        transport=settings.upstream_transport,
        connect_timeout=settings.upstream_connect_timeout,
        idle_timeout=settings.upstream_idle_timeout,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def _redis_store(settings: Settings) -> AsyncIterator[Any]:
    """The Redis store and its connection pool, closed at shutdown (imported only when used)."""
    from aura_agent.adapters.session_store.redis import (
        RedisSessionStore,
        close_redis_client,
        create_redis_client,
    )

    client = create_redis_client(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_timeout=settings.redis_socket_timeout,
    )
    try:
        yield RedisSessionStore(
            client,
            key_prefix=settings.redis_key_prefix,
            max_messages=settings.session_max_messages,
            ttl_seconds=settings.session_ttl_seconds,
        )
    finally:
        await close_redis_client(client)


# A stream lease in Redis outlives the longest stream by this much (setup and the last write).
STREAM_LEASE_MARGIN_SECONDS = 60.0


def _redis_rate_limiter(settings: Settings, store: Any) -> Any:
    """Limits on the session store's Redis client (imported only when used)."""
    from aura_agent.adapters.rate_limit.redis import RedisRateLimiter

    return RedisRateLimiter(
        store.client,
        key_prefix=settings.redis_key_prefix,
        requests_per_minute=settings.rate_limit_per_minute,
        max_streams=settings.max_streams_per_key,
        lease_seconds=settings.upstream_total_timeout + STREAM_LEASE_MARGIN_SECONDS,
    )


def build_chat_model(route: Route, settings: Settings, client: httpx.AsyncClient) -> ChatModel:
    """The adapter serving one route: its provider's row says which wire family speaks to it,
    and gives the name and label its errors carry. The only place that maps families to
    adapter classes."""
    spec = provider_spec(route.provider)
    if spec.family == "demo":
        return DemoChatModel(
            model=route.model, token_delay_seconds=settings.demo_token_delay_ms / 1000
        )
    endpoint = Endpoint(
        client=client,
        url=route.url,
        default_model=route.model,
        # `/chat` fills MODEL_TEMPERATURE / MODEL_MAX_TOKENS in itself; `/v1` sends only what
        # its client set. Anthropic requires a length limit, so its routes keep the setting's.
        default_temperature=None,
        default_max_tokens=settings.model_max_tokens if spec.family == "anthropic" else None,
        first_token_timeout=settings.upstream_first_token_timeout,
        provider=spec.name,
        label=spec.label,
    )
    if spec.family == "openrouter":
        from aura_agent.adapters.llm.openrouter import OpenRouterChatModel

        return OpenRouterChatModel(
            api_key=route.api_key or "",
            referer=settings.openrouter_referer,
            title=settings.openrouter_title,
            **endpoint,
        )
    if spec.family == "anthropic":
        from aura_agent.adapters.llm.anthropic import AnthropicChatModel

        return AnthropicChatModel(api_key=route.api_key or "", **endpoint)
    from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel

    return OpenAICompatibleChatModel(api_key=route.api_key, **endpoint)


def _model_router(settings: Settings, client: httpx.AsyncClient) -> ModelRouter:
    """Every configured route behind one `ChatModel`, with retries and fallbacks."""
    table = settings.routes
    routes = [
        ModelRoute(
            name=route.name,
            model=build_chat_model(route, settings, client),
            fallbacks=route.fallbacks,
            max_retries=settings.route_max_retries
            if route.max_retries is None
            else route.max_retries,
        )
        for route in table.routes
    ]
    policy = RetryPolicy(
        backoff_base_seconds=settings.retry_backoff_ms / 1000,
        budget_seconds=settings.retry_budget_seconds,
    )
    return ModelRouter(routes, default=table.default, policy=policy)


class Container(containers.DeclarativeContainer):
    """Wires the ports to adapters. Nothing is created until a provider is first called."""

    settings = providers.Dependency(instance_of=Settings)

    http_client = providers.Resource(_http_client, settings=settings)

    chat_model = providers.Singleton(_model_router, settings=settings, client=http_client)

    memory_store = providers.Singleton(
        lambda settings: MemorySessionStore(
            max_sessions=settings.session_max_sessions,
            max_messages=settings.session_max_messages,
            ttl_seconds=settings.session_ttl_seconds,
        ),
        settings=settings,
    )
    redis_store = providers.Resource(_redis_store, settings=settings)
    session_store = providers.Selector(
        providers.Callable(lambda settings: settings.session_store, settings),
        memory=memory_store,
        redis=redis_store,
    )

    # Limits live where sessions live: in Redis they hold across every instance.
    memory_rate_limiter = providers.Singleton(
        lambda settings: MemoryRateLimiter(
            requests_per_minute=settings.rate_limit_per_minute,
            max_streams=settings.max_streams_per_key,
        ),
        settings=settings,
    )
    redis_rate_limiter = providers.Singleton(
        _redis_rate_limiter, settings=settings, store=redis_store
    )
    rate_limiter = providers.Selector(
        providers.Callable(lambda settings: settings.session_store, settings),
        memory=memory_rate_limiter,
        redis=redis_rate_limiter,
    )

    chat_service = providers.Factory(
        lambda settings, model, store: ChatService(
            model=model,
            store=store,
            system_prompt=settings.system_prompt,
            history_token_budget=settings.history_token_budget,
        ),
        settings=settings,
        model=chat_model,
        store=session_store,
    )
