"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from aura_agent.app import create_app
from aura_agent.container import Container
from aura_agent.domain.ports import ChatModel
from tests.support import make_settings

AppFactory = Callable[..., Litestar]


@pytest.fixture
def build_app() -> AppFactory:
    """Build an app from setting overrides, optionally with a fake chat model wired in."""

    def factory(*, chat_model: ChatModel | None = None, **overrides: Any) -> Litestar:
        settings = make_settings(**overrides)
        container = Container(settings=settings)
        if chat_model is not None:
            from dependency_injector import providers

            container.chat_model.override(providers.Object(chat_model))
        return create_app(settings, container)

    return factory


@pytest.fixture
async def client(build_app: AppFactory) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A test client on the default test app (OpenRouter provider, mocked by pytest-httpx)."""
    async with AsyncTestClient(app=build_app()) as test_client:
        yield test_client
