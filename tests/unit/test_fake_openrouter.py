"""The loopback fake OpenRouter, exercised over real sockets with httpx as the gateway would."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


def chat_body(text: str = "hello big world", *, stream: bool = True) -> dict[str, Any]:
    return {
        "model": "test/model",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "an older question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": text},
        ],
    }


def sse_data(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded except for ``[DONE]``."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            payload = block.removeprefix("data: ")
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


async def stream_into(http: httpx.AsyncClient, url: str, received: list[str]) -> None:
    """Stream a chat reply into ``received``, which keeps what arrived if the stream breaks."""
    async with http.stream("POST", url, json=chat_body()) as resp:
        async for text in resp.aiter_text():
            received.append(text)


def token_texts(events: list[Any]) -> list[str]:
    return [
        e["choices"][0]["delta"]["content"]
        for e in events
        if isinstance(e, dict) and e.get("choices") and e["choices"][0]["finish_reason"] is None
    ]


async def test_default_reply_echoes_last_user_message_then_finish_usage_done(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    resp = await http.post(fake.chat_url, json=chat_body())

    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    events = sse_data(resp.text)
    assert token_texts(events) == ["Echo: ", "hello ", "big ", "world"]
    chunks = events[:-1]
    assert all(e["object"] == "chat.completion.chunk" for e in chunks)
    assert all(e["model"] == "test/model" for e in chunks)
    assert len({e["id"] for e in chunks}) == 1
    assert chunks[0]["id"].startswith("gen-")
    finish = events[4]
    assert finish["choices"][0]["finish_reason"] == "stop"
    usage = events[5]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 4
    assert usage["usage"]["prompt_tokens"] > 0
    assert usage["usage"]["total_tokens"] == (
        usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]
    )
    assert events[6:] == ["[DONE]"]


async def test_enqueued_scripts_answer_in_order_then_the_default(
    http: httpx.AsyncClient,
) -> None:
    async with FakeOpenRouter(default_script=Script(tokens=["default"])) as fake:
        fake.enqueue(Script(tokens=["first"]), Script(tokens=["sec", "ond"]))
        replies = [
            token_texts(sse_data((await http.post(fake.chat_url, json=chat_body())).text))
            for _ in range(3)
        ]

    assert replies == [["first"], ["sec", "ond"], ["default"]]


async def test_script_controls_finish_reason_usage_and_done(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(
        Script(tokens=["a", "a", "b"], finish_reason="length", usage=False, send_done=False)
    )

    events = sse_data((await http.post(fake.chat_url, json=chat_body())).text)

    assert token_texts(events) == ["a", "a", "b"]
    assert len(events) == 4
    assert events[-1]["choices"][0]["finish_reason"] == "length"
    assert "usage" not in events[-1]


async def test_delays_are_honoured(fake: FakeOpenRouter, http: httpx.AsyncClient) -> None:
    fake.enqueue(Script(tokens=["a", "b", "c"], first_token_delay=0.2, token_delay=0.05))

    started = time.monotonic()
    resp = await http.post(fake.chat_url, json=chat_body())

    assert time.monotonic() - started >= 0.25
    assert token_texts(sse_data(resp.text)) == ["a", "b", "c"]


async def test_comments_are_sent_while_waiting_for_the_first_token(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["x"], first_token_delay=0.15, comments_while_waiting=0.05))

    text = (await http.post(fake.chat_url, json=chat_body())).text

    assert text.startswith(": OPENROUTER PROCESSING\n\n")
    assert text.index(": OPENROUTER PROCESSING") < text.index("data: ")
    assert token_texts(sse_data(text)) == ["x"]


async def test_http_error_status_returns_error_json_and_headers(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(status=429, error_message="slow down", headers={"Retry-After": "7"}))

    resp = await http.post(fake.chat_url, json=chat_body())

    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"error": {"code": 429, "message": "slow down"}}
    assert fake.requests[0].status == 429
    # The connection survives an error reply.
    assert (await http.post(fake.chat_url, json=chat_body())).status_code == 200
    assert fake.connections_total == 1


async def test_in_band_error_follows_the_tokens_and_ends_the_stream(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    error = {"code": 502, "message": "provider died"}
    fake.enqueue(Script(tokens=["par", "tial"], in_band_error=error))

    resp = await http.post(fake.chat_url, json=chat_body())

    assert resp.status_code == 200
    events = sse_data(resp.text)
    assert token_texts(events) == ["par", "tial"]
    assert len(events) == 3
    assert events[2]["error"] == error
    assert events[2]["choices"][0]["finish_reason"] == "error"


async def test_drop_after_tokens_leaves_the_stream_incomplete(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["only", " this"], drop_after_tokens=True))
    received: list[str] = []

    with pytest.raises(httpx.RemoteProtocolError):
        await stream_into(http, fake.chat_url, received)

    assert token_texts(sse_data("".join(received))) == ["only", " this"]
    assert "[DONE]" not in "".join(received)
    assert not fake.requests[0].client_closed


async def test_keep_alive_serves_several_requests_on_one_connection(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    for _ in range(3):
        assert (await http.post(fake.chat_url, json=chat_body())).status_code == 200
    assert (await http.get(f"{fake.base_url}/models")).status_code == 200

    assert fake.connections_total == 1
    assert {r.connection_id for r in fake.requests} == {fake.requests[0].connection_id}


async def test_connection_close_is_honoured(fake: FakeOpenRouter, http: httpx.AsyncClient) -> None:
    for _ in range(2):
        resp = await http.post(fake.chat_url, json=chat_body(), headers={"Connection": "close"})
        assert resp.headers["connection"] == "close"

    assert fake.connections_total == 2


async def test_pipelined_requests_are_answered_in_order(fake: FakeOpenRouter) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    request = b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(request + request.replace(b"models", b"nope"))
    try:
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    finally:
        writer.close()

    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.startswith(b"HTTP/1.1 404 Not Found\r\n")


async def test_requests_are_recorded(fake: FakeOpenRouter, http: httpx.AsyncClient) -> None:
    script = Script(tokens=["ok"])
    fake.enqueue(script)
    body = chat_body("record me")

    await http.post(fake.chat_url, json=body, headers={"Authorization": "Bearer sk-test"})
    await fake.wait_for_requests(1)

    [record] = fake.requests
    assert record.method == "POST"
    assert record.path == "/api/v1/chat/completions"
    assert record.json == body
    assert record.headers["authorization"] == "Bearer sk-test"
    assert record.headers["content-type"] == "application/json"
    assert record.script is script
    assert record.status == 200
    assert record.finished_at is not None
    assert record.finished_at >= record.received_at
    assert not record.client_closed
    assert fake.chat_requests == [record]


async def test_client_disconnect_during_a_stall_is_recorded(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(stall=True))

    async with http.stream("POST", fake.chat_url, json=chat_body()) as resp:
        assert resp.status_code == 200
        assert fake.requests[0].finished_at is None
    closed_at = time.monotonic()

    record = await fake.wait_closed(0, timeout=3)
    assert record.client_closed
    assert record.finished_at is not None
    assert record.finished_at - closed_at < 1.0


async def test_client_disconnect_between_tokens_is_recorded(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["tok"] * 500, token_delay=0.02))

    async with http.stream("POST", fake.chat_url, json=chat_body()) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                break
    closed_at = time.monotonic()

    record = await fake.wait_closed(0, timeout=3)
    assert record.client_closed
    assert record.finished_at is not None
    assert record.finished_at - closed_at < 1.0


async def test_stop_drops_open_connections_quietly(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOpenRouter(default_script=Script(stall=True))
    await fake.start()
    async with http.stream("POST", fake.chat_url, json=chat_body()) as resp:
        await asyncio.wait_for(fake.stop(), 3)
        with pytest.raises(httpx.RemoteProtocolError):
            await resp.aread()
    await asyncio.sleep(0.01)  # let asyncio run the handler tasks' done callbacks

    assert fake.requests[0].finished_at is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_models_endpoint_lists_models(http: httpx.AsyncClient) -> None:
    async with FakeOpenRouter(models=["a/one", "b/two"]) as fake:
        resp = await http.get(f"{fake.base_url}/models")

    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()["data"]] == ["a/one", "b/two"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/nope"), ("GET", "/api/v1/chat/completions"), ("POST", "/v1/models")],
)
async def test_unknown_routes_are_404_json(
    fake: FakeOpenRouter, http: httpx.AsyncClient, method: str, path: str
) -> None:
    resp = await http.request(method, f"http://127.0.0.1:{fake.port}{path}")

    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == 404


async def test_custom_prefix_moves_the_routes(http: httpx.AsyncClient) -> None:
    async with FakeOpenRouter(prefix="/openrouter") as fake:
        assert fake.chat_url == f"http://127.0.0.1:{fake.port}/openrouter/chat/completions"
        resp = await http.post(fake.chat_url, json=chat_body())

    assert resp.status_code == 200


async def test_non_stream_request_gets_a_json_completion(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["Hel", "lo"], finish_reason="length"))

    resp = await http.post(fake.chat_url, json=chat_body(stream=False))

    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(len(resp.content))
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


async def test_chunked_request_body_is_read(fake: FakeOpenRouter, http: httpx.AsyncClient) -> None:
    payload = json.dumps(chat_body("chunked upload")).encode()

    async def body() -> AsyncIterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    resp = await http.post(fake.chat_url, content=body())

    assert fake.requests[0].headers["transfer-encoding"] == "chunked"
    assert fake.requests[0].json == chat_body("chunked upload")
    assert token_texts(sse_data(resp.text)) == ["Echo: ", "chunked ", "upload"]


async def test_invalid_json_is_400_and_keeps_the_script(
    fake: FakeOpenRouter, http: httpx.AsyncClient
) -> None:
    fake.enqueue(Script(tokens=["kept"]))

    bad = await http.post(fake.chat_url, content=b"{not json")
    good = await http.post(fake.chat_url, json=chat_body())

    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == 400
    assert token_texts(sse_data(good.text)) == ["kept"]


async def test_waiting_for_requests_that_never_come_times_out(fake: FakeOpenRouter) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_for_requests(1, timeout=0.05)
    with pytest.raises(TimeoutError):
        await fake.wait_closed(0, timeout=0.05)


async def test_command_line_serves_until_sigterm(http: httpx.AsyncClient) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aura_agent.testing.fake_openrouter",
        "--port",
        "0",
        "--tokens",
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        prefix, url = line.split()
        assert prefix == "FAKE_OPENROUTER_READY"
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/api/v1/chat/completions")

        resp = await http.post(url, json=chat_body())
        assert token_texts(sse_data(resp.text)) == ["tok "] * 3

        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
