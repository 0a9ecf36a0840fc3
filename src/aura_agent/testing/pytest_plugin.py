"""The `openrouter_mock` fixture, for tests that mock OpenRouter through pytest-httpx.

Enable it with `pytest_plugins = ["aura_agent.testing.pytest_plugin"]`.

Kept out of the package's pytest entry points on purpose: users opt in, and importing this module
requires pytest-httpx (the `testing` extra).
"""

from __future__ import annotations

import pytest
from pytest_httpx import HTTPXMock

from aura_agent.testing.openrouter_mock import OpenRouterMock

__all__ = ["openrouter_mock"]


@pytest.fixture
def openrouter_mock(httpx_mock: HTTPXMock) -> OpenRouterMock:
    """An `OpenRouterMock` on pytest-httpx's `httpx_mock`, for the default OpenRouter URL."""
    return OpenRouterMock(httpx_mock)
