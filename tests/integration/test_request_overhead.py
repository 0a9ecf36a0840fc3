"""What one streamed request costs the event loop, and how a request that never started ends.

The relay's latency under load depends on how many tasks a request creates (each task start
waits for a loop iteration). These tests pin the count through the real server, so that a
dependency or guard change that makes Litestar spawn tasks per request shows up here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory
from tests.integration.test_metrics import sample
from tests.support import API_KEY, AUTH, ScriptedModel, counting_tasks, serve_app

BEARER = {"authorization": f"Bearer {API_KEY}"}
COMPLETION = {
    "model": "deepseek/deepseek-chat",
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        ("/chat", AUTH, {"message": "hi"}),
        ("/v1/chat/completions", BEARER, COMPLETION),
    ],
    ids=["chat", "v1"],
)
async def test_a_streamed_request_creates_one_task_besides_the_servers(
    build_app: AppFactory, path: str, headers: dict[str, str], body: dict[str, Any]
) -> None:
    app = build_app(chat_model=ScriptedModel(["a", "b", "c"]))
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        warm = await http.post(path, headers=headers, json=body)  # connection and caches warm
        assert warm.status_code == 200, warm.text
        with counting_tasks() as created:
            response = await http.post(path, headers=headers, json=body)
        assert response.status_code == 200, response.text
        assert "[DONE]" in response.text

    ours = [name for name in created if "run_asgi" not in name]
    # uvicorn's task per request is the server's; the rest are ours: the disconnect watcher
    # only (Litestar's concurrent dependency resolution would add one task per dependency).
    assert ours == ["SSEResponse._watch"], created


async def test_a_client_leaving_before_the_status_line_is_a_499_not_a_server_error(
    build_app: AppFactory,
) -> None:
    model = ScriptedModel(["late"], first_token_delay=5)
    app = build_app(chat_model=model, keepalive_seconds=30)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/chat/completions", headers=BEARER, json=COMPLETION, timeout=0.3)
        for _ in range(100):
            text = (await http.get("/metrics")).text
            left = sample(text, "aura_requests_total", route="/v1/chat/completions", status="499")
            if left:
                break
            await asyncio.sleep(0.02)
    assert left == 1
    assert sample(text, "aura_requests_total", route="/v1/chat/completions", status="500") == 0
    assert model.closed == 1  # the upstream read was cancelled and closed
