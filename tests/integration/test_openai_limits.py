"""`/v1/chat/completions` under the same stream caps, total time limit and shutdown drain as
`/chat`, with every refusal and every cut-short ending in OpenAI's error shape.

Through a real uvicorn server (httptools) on loopback, as in test_stream_caps_and_timeouts.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from aura_agent.http.sse.control import _REGISTRIES, SHUTDOWN_MESSAGE
from tests.conftest import AppFactory
from tests.integration.test_stream_caps_and_timeouts import SteadyModel, _server
from tests.support import API_KEY, AUTH, parse_sse

ROUTE = "deepseek/deepseek-chat"  # the default route of the test settings
BEARER = {"authorization": f"Bearer {API_KEY}"}
OTHER_KEY = "other-tenant-key-31d7a0"


def _completion(message: str, *, stream: bool = True) -> dict[str, Any]:
    return {"model": ROUTE, "messages": [{"role": "user", "content": message}], "stream": stream}


async def _post_v1(base: str, message: str, key: str = API_KEY, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.post(
            "/v1/chat/completions",
            json=_completion(message, **kw),
            headers={"authorization": f"Bearer {key}"},
        )


def _last_data(content: bytes) -> Any:
    events = parse_sse(content)
    return json.loads(events[-1].data)


async def test_the_instance_cap_refuses_a_completion_with_an_openai_503(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()
    app = build_app(
        chat_model=model, max_concurrent_streams=1, internal_api_keys=f"other:{OTHER_KEY}"
    )
    async with (
        _server(app) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream("POST", "/chat", json={"message": "hold"}, headers=AUTH) as held,
    ):
        chunks = held.aiter_raw()  # kept: a dropped iterator closes the response
        await anext(chunks)
        refused = await _post_v1(base, "quick", OTHER_KEY)
        refused_whole = await _post_v1(base, "quick", OTHER_KEY, stream=False)
        model.release.set()
        rest = b"".join([chunk async for chunk in chunks])
        after = await _post_v1(base, "quick", OTHER_KEY)

    for response in (refused, refused_whole):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "service_unavailable")
        assert "maximum of 1 streams" in error["message"]
    assert b"event: done" in rest
    assert after.status_code == 200
    assert parse_sse(after.content)[-1].data == "[DONE]"


async def test_the_per_key_cap_refuses_a_completion_with_an_openai_429(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()
    app = build_app(chat_model=model, max_streams_per_key=1)
    async with (
        _server(app) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", "/v1/chat/completions", json=_completion("hold"), headers=BEARER
        ) as held,
    ):
        chunks = held.aiter_raw()
        await anext(chunks)
        refused = await _post_v1(base, "quick")
        model.release.set()
        rest = b"".join([chunk async for chunk in chunks])
        after = await _post_v1(base, "quick", stream=False)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert b"data: [DONE]" in rest
    assert after.status_code == 200, "the slot was given back when the stream ended"
    assert after.json()["choices"][0]["message"]["content"] == "ok"


async def test_a_completion_longer_than_the_total_limit_ends_with_an_openai_error(
    build_app: AppFactory,
) -> None:
    model = SteadyModel(delay=0.05, text="word ")
    app = build_app(chat_model=model, upstream_total_timeout=0.5)
    async with _server(app) as (base, _):
        streamed = await _post_v1(base, "go on forever")
        whole = await _post_v1(base, "go on forever", stream=False)

    assert streamed.status_code == 200
    assert b"[DONE]" not in streamed.content
    assert _last_data(streamed.content) == {
        "error": {
            "message": "the reply took longer than 0.5 s",
            "type": "server_error",
            "param": None,
            "code": "timeout",
        }
    }
    assert whole.status_code == 504
    assert whole.json()["error"]["code"] == "timeout"
    assert model.closed == 2, "both upstream streams were closed"


async def test_the_shutdown_drain_ends_a_completion_stream_with_an_openai_error(
    build_app: AppFactory,
) -> None:
    model = SteadyModel()
    app = build_app(chat_model=model)
    async with (
        _server(app) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=10) as http,
        http.stream(
            "POST", "/v1/chat/completions", json=_completion("hold"), headers=BEARER
        ) as held,
    ):
        chunks = held.aiter_raw()
        first = await anext(chunks)
        # What `drain_streams` does once the grace period is over (it would also wait for the
        # registries of other tests' apps, which this process may still hold).
        stopped = sum(r.stop_all(SHUTDOWN_MESSAGE) for r in list(_REGISTRIES) if len(r))
        rest = b"".join([chunk async for chunk in chunks])
        refused = await _post_v1(base, "quick")

    assert stopped == 1
    error = _last_data(first + rest)["error"]
    assert (error["type"], error["code"]) == ("server_error", "service_unavailable")
    assert error["message"] == "the server is shutting down; please retry"
    assert refused.status_code == 503
