"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A real httpx client; pytest-httpx intercepts its transport in the adapter tests."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the loopback fakes, over real sockets."""
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http_client:
        yield http_client
