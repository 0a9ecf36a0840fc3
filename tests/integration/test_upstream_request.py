"""What the gateway puts on the wire to a provider, and reads back, on every upstream transport."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
import pytest

from aura_agent import __version__
from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel
from aura_agent.container import _http_client
from aura_agent.domain.models import Message, Role
from tests.adapter_helpers import provider_row, stream_events, texts
from tests.raw_upstream import RawReply, RawUpstream, finish_event, token_event
from tests.support import make_settings

API_KEY = "sk-wire-0123456789abcdef"
REPLY = token_event("Hel") + token_event("lo") + finish_event() + b"data: [DONE]\n\n"
TRANSPORTS = pytest.mark.parametrize("transport", ["httpx", "asyncio"])


def _head(*extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n" + (
        b"".join(line + b"\r\n" for line in extra) + b"\r\n"
    )


@asynccontextmanager
async def _model(transport: str, upstream: RawUpstream) -> AsyncIterator[OpenAICompatibleChatModel]:
    clients = _http_client(make_settings(upstream_transport=transport))
    client = await anext(clients)
    try:
        yield OpenAICompatibleChatModel(
            client=client,
            url=f"{upstream.base_url}/chat/completions",
            api_key=API_KEY,
            default_model="m",
            default_temperature=0.0,
            default_max_tokens=10,
            first_token_timeout=5.0,
            **provider_row("openai"),
        )
    finally:
        await clients.aclose()


def _head_lines(request: bytes) -> dict[bytes, bytes]:
    head, _, _ = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")[1:]
    return {
        name.strip().lower(): value.strip() for name, _, value in (x.partition(b":") for x in lines)
    }


@TRANSPORTS
async def test_the_request_on_the_wire_and_no_cookie_kept(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parsing(self: httpx.Cookies, response: httpx.Response) -> None:
        raise AssertionError("a provider's Set-Cookie was parsed")

    monkeypatch.setattr(httpx.Cookies, "extract_cookies", no_parsing)
    reply = RawReply(writes=[_head(b"Set-Cookie: __cf_bm=tenant-a-secret; Path=/") + REPLY])
    async with RawUpstream(reply) as upstream, _model(transport, upstream) as model:
        host = f"127.0.0.1:{upstream.port}".encode()
        prompt = [Message(role=Role.USER, content="hi")]
        assert texts(await stream_events(model, prompt)) == ["Hel", "lo"]
        assert texts(await stream_events(model, prompt)) == ["Hel", "lo"]
    first, second = upstream.requests
    assert first.startswith(b"POST /api/v1/chat/completions HTTP/1.1\r\n")
    headers = _head_lines(first)
    body = first.partition(b"\r\n\r\n")[2]
    assert headers[b"host"] == host
    assert headers[b"content-length"] == str(len(body)).encode()
    assert headers[b"user-agent"] == f"aura-agent/{__version__}".encode()
    assert headers[b"accept-encoding"] == b"identity"
    assert headers[b"authorization"] == f"Bearer {API_KEY}".encode()
    assert headers[b"content-type"] == b"application/json"
    assert msgspec.json.decode(body)["stream"] is True
    assert b"cookie" not in _head_lines(second)


@TRANSPORTS
async def test_a_compressed_stream_is_decoded(transport: str) -> None:
    reply = RawReply(writes=[_head(b"Content-Encoding: gzip"), gzip.compress(REPLY)])
    async with RawUpstream(reply) as upstream, _model(transport, upstream) as model:
        events = await stream_events(model, [Message(role=Role.USER, content="hi")])
    assert texts(events) == ["Hel", "lo"]
