"""Tenants: every key is a tenant, and a tenant reaches only its own sessions, in every store.

Tenant A creates session "s1"; tenant B, sending the same id, must find nothing there, delete
nothing, and start an empty conversation of its own.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import AppFactory
from tests.shared_redis import delete_prefix, keys_under, shared_redis_url, unique_prefix
from tests.support import AUTH, ScriptedModel, parse_sse, terminal_event

ALPHA_KEY = "alpha-key-4f0c1e9d2b7a"
BETA_KEY = "beta-key-9a8b7c6d5e4f"
ALPHA = {"x-api-key": ALPHA_KEY}
BETA = {"x-api-key": BETA_KEY}
TENANT_KEYS = f"alpha:{ALPHA_KEY},beta:{BETA_KEY}"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="aura-tenants-") as workdir,
        shared_redis_url(Path(workdir)) as url,
    ):
        yield url


class Tenants:
    """A client on an app with three tenants (default, alpha, beta) and its recording model."""

    def __init__(
        self, client: AsyncTestClient[Litestar], model: ScriptedModel, store: str, prefix: str
    ) -> None:
        self.client = client
        self.model = model
        self.store = store
        self.prefix = prefix

    async def chat(self, headers: dict[str, str], message: str, session_id: str) -> str:
        response = await self.client.post(
            "/chat", json={"message": message, "session_id": session_id}, headers=headers
        )
        assert response.status_code == 200, response.text
        ending = terminal_event(parse_sse(response.content))
        assert (ending.event, ending.data) == ("done", "[DONE]")
        return response.headers["x-session-id"]

    async def history(self, headers: dict[str, str], session_id: str) -> Any:
        response = await self.client.get(f"/sessions/{session_id}", headers=headers)
        return response.json() if response.status_code == 200 else response.status_code


@asynccontextmanager
async def _tenants_app(build_app: AppFactory, store: str, redis_url: str) -> AsyncIterator[Tenants]:
    prefix = unique_prefix()
    overrides: dict[str, str] = {"internal_api_keys": TENANT_KEYS}
    if store == "redis":
        overrides |= {"session_store": "redis", "redis_url": redis_url, "redis_key_prefix": prefix}
    model = ScriptedModel(["Sure", "."])
    try:
        async with AsyncTestClient(app=build_app(chat_model=model, **overrides)) as client:
            yield Tenants(client, model, store, prefix)
    finally:
        await delete_prefix(redis_url, prefix)


@pytest.fixture(params=["memory", "redis"])
async def tenants(
    request: pytest.FixtureRequest, build_app: AppFactory, redis_url: str
) -> AsyncIterator[Tenants]:
    async with _tenants_app(build_app, request.param, redis_url) as app:
        yield app


async def test_another_tenant_cannot_read_delete_or_continue_a_session(tenants: Tenants) -> None:
    await tenants.chat(ALPHA, "alpha's secret plan", "s1")
    alpha_history = await tenants.history(ALPHA, "s1")

    assert await tenants.history(BETA, "s1") == 404
    assert await tenants.history(AUTH, "s1") == 404, "the default tenant is a tenant too"
    deleted = await tenants.client.delete("/sessions/s1", headers=BETA)
    assert deleted.status_code == 404
    assert await tenants.history(ALPHA, "s1") == alpha_history

    session = await tenants.chat(BETA, "hello", "s1")

    assert session == "s1", "clients see their own id, never the scoped one"
    prompt, _ = tenants.model.calls[-1]
    assert [(m.role.value, m.content) for m in prompt] == [("user", "hello")]
    assert "secret" not in repr(tenants.model.calls[-1])
    assert [m["content"] for m in (await tenants.history(BETA, "s1"))["messages"]] == [
        "hello",
        "Sure.",
    ]
    assert await tenants.history(ALPHA, "s1") == alpha_history
    assert [m["content"] for m in alpha_history["messages"]] == ["alpha's secret plan", "Sure."]


async def test_each_tenant_deletes_only_its_own_session(tenants: Tenants) -> None:
    await tenants.chat(ALPHA, "from alpha", "shared-id")
    await tenants.chat(BETA, "from beta", "shared-id")

    deleted = await tenants.client.delete("/sessions/shared-id", headers=BETA)

    assert deleted.status_code == 204
    assert await tenants.history(BETA, "shared-id") == 404
    assert (await tenants.history(ALPHA, "shared-id"))["messages"][0]["content"] == "from alpha"


async def test_sessions_are_namespaced_in_redis(build_app: AppFactory, redis_url: str) -> None:
    async with _tenants_app(build_app, "redis", redis_url) as tenants:
        await tenants.chat(ALPHA, "a", "s1")
        await tenants.chat(BETA, "b", "s1")
        await tenants.chat(AUTH, "d", "s1")

        # The default tenant keeps the seed's bare ids: a single-key deployment keeps its data.
        assert await keys_under(redis_url, tenants.prefix) == sorted(
            f"{tenants.prefix}session:{suffix}".encode() for suffix in ("alpha/s1", "beta/s1", "s1")
        )


async def test_the_tenant_is_logged_and_failed_keys_are_not(build_app: AppFactory) -> None:
    app = build_app(chat_model=ScriptedModel(["ok"]), internal_api_keys=TENANT_KEYS)
    async with AsyncTestClient(app=app) as client:
        with structlog.testing.capture_logs() as logs:
            served = await client.get("/sessions/none", headers=BETA)
            refused = await client.get("/sessions/none", headers={"x-api-key": "guess-12345"})

    assert served.status_code == 404
    assert refused.status_code == 401
    lines = [log for log in logs if log["event"] == "request"]
    assert [line.get("tenant") for line in lines] == ["beta", None]
    failures = [log for log in logs if log["event"] == "auth_failed"]
    assert len(failures) == 1
    assert failures[0]["reason"] == "wrong"
    assert failures[0]["path"] == "/sessions/none"
    assert failures[0]["client_ip"]
    assert "guess-12345" not in repr(logs)
    assert BETA_KEY not in repr(logs)


async def test_a_key_stored_as_its_sha256_digest_authenticates(
    build_app: AppFactory, tmp_path: Path
) -> None:
    digest = hashlib.sha256(b"hashed-tenant-key-77").hexdigest()
    keys = tmp_path / "keys"
    keys.write_text(f"# hashed\nhashed = sha256:{digest}\n")
    model = ScriptedModel(["ok"])
    app = build_app(chat_model=model, api_keys_file=str(keys))
    async with AsyncTestClient(app=app) as client:
        ok = await client.post(
            "/chat",
            json={"message": "hi", "session_id": "h1"},
            headers={"x-api-key": "hashed-tenant-key-77"},
        )
        digest_as_key = await client.get("/sessions/h1", headers={"x-api-key": digest})
        default = await client.get("/sessions/h1", headers=AUTH)
        own = await client.get("/sessions/h1", headers={"x-api-key": "hashed-tenant-key-77"})

    assert ok.status_code == 200
    assert terminal_event(parse_sse(ok.content)).event == "done"
    assert digest_as_key.status_code == 401, "knowing the stored digest is not knowing the key"
    assert default.status_code == 404
    assert own.status_code == 200


async def test_the_openai_api_scopes_x_session_id_to_the_tenant_too(tenants: Tenants) -> None:
    await tenants.chat(ALPHA, "alpha's secret plan", "s1")
    alpha_history = await tenants.history(ALPHA, "s1")

    response = await tenants.client.post(
        "/v1/chat/completions",
        json={
            "model": "deepseek/deepseek-chat",  # the default route of the test settings
            "messages": [{"role": "user", "content": "hello"}],
        },
        headers={"Authorization": f"Bearer {BETA_KEY}", "X-Session-Id": "s1"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-session-id"] == "s1"
    prompt, _ = tenants.model.calls[-1]
    assert [(m.role.value, m.content) for m in prompt] == [("user", "hello")]
    assert await tenants.history(ALPHA, "s1") == alpha_history
    assert [m["content"] for m in (await tenants.history(BETA, "s1"))["messages"]] == [
        "hello",
        "Sure.",
    ]
