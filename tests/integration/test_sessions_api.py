"""`GET` / `DELETE /sessions/{id}` on both stores: what `/chat` saved is what comes back."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import AppFactory
from tests.shared_redis import delete_prefix, keys_under, shared_redis_url, unique_prefix
from tests.support import AUTH, ScriptedModel, parse_sse, terminal_event

STORES = ["memory", "redis"]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="aura-sessions-") as workdir,
        shared_redis_url(Path(workdir)) as url,
    ):
        yield url


class Api:
    """A test client plus what the test needs to look behind the app's back."""

    def __init__(self, client: AsyncTestClient[Litestar], store: str, redis_url: str, prefix: str):
        self.client = client
        self.store = store
        self.redis_url = redis_url
        self.prefix = prefix

    async def chat(self, message: str, session_id: str) -> None:
        response = await self.client.post(
            "/chat", json={"message": message, "session_id": session_id}, headers=AUTH
        )
        assert response.status_code == 200
        ending = terminal_event(parse_sse(response.content))
        assert (ending.event, ending.data) == ("done", "[DONE]")


@pytest.fixture(params=STORES)
async def api(
    request: pytest.FixtureRequest, build_app: AppFactory, redis_url: str
) -> AsyncIterator[Api]:
    store: str = request.param
    prefix = unique_prefix()
    overrides = {}
    if store == "redis":
        overrides = {"session_store": "redis", "redis_url": redis_url, "redis_key_prefix": prefix}
    app = build_app(chat_model=ScriptedModel(["Hi", " there"]), **overrides)
    try:
        async with AsyncTestClient(app=app) as client:
            yield Api(client, store, redis_url, prefix)
    finally:
        await delete_prefix(redis_url, prefix)


async def test_history_holds_every_turn_in_order(api: Api) -> None:
    await api.chat("one", "conv-1")
    await api.chat("two", "conv-1")
    await api.chat("elsewhere", "conv-2")

    response = await api.client.get("/sessions/conv-1", headers=AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "session_id": "conv-1",
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "Hi there"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "Hi there"},
        ],
    }


async def test_delete_forgets_the_session(api: Api) -> None:
    await api.chat("one", "conv-1")
    await api.chat("kept", "conv-2")

    deleted = await api.client.delete("/sessions/conv-1", headers=AUTH)
    after = await api.client.get("/sessions/conv-1", headers=AUTH)
    again = await api.client.delete("/sessions/conv-1", headers=AUTH)
    other = await api.client.get("/sessions/conv-2", headers=AUTH)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert after.status_code == 404
    assert again.status_code == 404
    assert [m["content"] for m in other.json()["messages"]] == ["kept", "Hi there"]
    if api.store == "redis":
        assert await keys_under(api.redis_url, api.prefix) == [
            f"{api.prefix}session:conv-2".encode()
        ]


async def test_unknown_session_is_a_404_problem(api: Api) -> None:
    response = await api.client.get("/sessions/never-used", headers=AUTH)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["field"] == "session_id"
    assert "no conversation is stored" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}], ids=["missing", "wrong"])
async def test_the_api_key_is_required(api: Api, method: str, headers: dict[str, str]) -> None:
    await api.chat("secret", "conv-1")

    response = await api.client.request(method, "/sessions/conv-1", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text
    still_there = await api.client.get("/sessions/conv-1", headers=AUTH)
    assert still_there.status_code == 200


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    "session_id",
    ["a" * 129, "dot.ted", "with%20space", "%C3%A9t%C3%A9", "star*", "colon:x"],
)
async def test_a_malformed_id_is_a_400_naming_session_id(
    api: Api, method: str, session_id: str
) -> None:
    response = await api.client.request(method, f"/sessions/{session_id}", headers=AUTH)

    assert response.status_code == 400
    problem = response.json()
    assert problem["field"] == "session_id"
    assert problem["detail"].startswith("invalid session_id: must be 1 to 128 characters")


async def test_the_longest_valid_id_is_accepted(api: Api) -> None:
    session_id = "A-_9" * 32  # 128 characters

    await api.chat("long id", session_id)

    response = await api.client.get(f"/sessions/{session_id}", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["session_id"] == session_id
