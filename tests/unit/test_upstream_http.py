"""The upstream POST skips httpx's client layers yet sends what a plain `httpx.Request` would."""

from __future__ import annotations

import gzip
import inspect

import httpx
import pytest
from pytest_httpx import HTTPXMock

from aura_agent import __version__
from aura_agent.adapters.http_client.upstream_http import (
    DEFAULT_HEADERS,
    UpstreamEndpoint,
    body_chunks,
    transport_for,
)
from aura_agent.adapters.llm.openai_compatible import OpenAICompatibleChatModel
from aura_agent.domain.models import Message, Role
from tests.adapter_helpers import provider_row, stream_events, texts

URL = "https://llm.test:8443/v1/chat/completions?tenant=a"
HEADERS = {"Authorization": "Bearer sk-unit", "Content-Type": "application/json"}
BODY = b'{"model": "m", "stream": true}'
SSE = (
    b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
    b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


async def test_the_request_matches_httpx_own_build() -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(7.0, read=42.0)) as client:
        request = UpstreamEndpoint(client, URL, HEADERS).request(BODY)
        expected = client.build_request(
            "POST", URL, content=BODY, headers={**DEFAULT_HEADERS, **HEADERS}
        )
    plain = httpx.Request("POST", URL, content=BODY, headers={**DEFAULT_HEADERS, **HEADERS})
    assert request.url == expected.url
    assert request.headers.raw == plain.headers.raw  # Host first, Content-Length last
    assert request.headers["host"] == "llm.test:8443"
    assert request.headers["content-length"] == str(len(BODY))
    assert request.headers["user-agent"] == f"aura-agent/{__version__}"
    assert request.headers["accept-encoding"] == "identity"
    assert request.extensions == expected.extensions  # the client's timeout, as httpx sets it
    assert request.content == BODY


def test_adapter_headers_replace_the_defaults_whatever_their_case() -> None:
    client = httpx.AsyncClient()
    request = UpstreamEndpoint(client, URL, {"user-agent": "mine/1"}).request(b"{}")
    assert request.headers.get_list("User-Agent") == ["mine/1"]


async def test_credentials_in_the_url_are_sent_as_httpx_would() -> None:
    url = "http://user:p%40ss@llm.test/v1/chat/completions"
    ok = httpx.MockTransport(lambda _: httpx.Response(200))
    async with httpx.AsyncClient(transport=ok) as c:
        expected = (await c.post(url, content=b"{}")).request
        request = UpstreamEndpoint(c, url, {"Authorization": "Bearer ignored"}).request(b"{}")
    assert request.headers.get_list("authorization") == [expected.headers["authorization"]]
    assert request.headers["host"] == "llm.test"


async def test_the_request_goes_through_the_clients_mount_for_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    mounts = {"https://llm.test:8443": httpx.MockTransport(handler)}
    async with httpx.AsyncClient(mounts=mounts) as client:
        response = await UpstreamEndpoint(client, URL, HEADERS).post(BODY)
        try:
            assert response.request is seen[0]
            assert [part async for part in body_chunks(response)] == [b"ok"]
        finally:
            await response.aclose()
    assert seen[0].content == BODY


async def test_a_closed_client_refuses_like_httpx() -> None:
    client = httpx.AsyncClient()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await UpstreamEndpoint(client, URL, HEADERS).post(BODY)


async def test_a_transport_failure_names_its_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await UpstreamEndpoint(client, URL, HEADERS).post(BODY)
    assert info.value.request.url == httpx.URL(URL)


async def test_a_body_is_streamed_once() -> None:
    response = httpx.Response(200, stream=httpx.ByteStream(b"x"))
    assert [part async for part in body_chunks(response)] == [b"x"]
    with pytest.raises(httpx.StreamConsumed):
        [part async for part in body_chunks(response)]


async def test_a_compressed_body_is_decoded() -> None:
    raw = gzip.compress(SSE)
    response = httpx.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(raw)
    )
    assert b"".join([part async for part in body_chunks(response)]) == SSE


async def test_the_adapter_sends_its_user_agent_and_parses_no_cookie(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parsing(self: httpx.Cookies, response: httpx.Response) -> None:
        raise AssertionError("a provider's Set-Cookie was parsed")

    monkeypatch.setattr(httpx.Cookies, "extract_cookies", no_parsing)
    url = "https://api.openai.test/v1/chat/completions"
    httpx_mock.add_response(
        url=url,
        headers={"content-type": "text/event-stream", "set-cookie": "__cf_bm=tenant-a; Path=/"},
        content=SSE,
    )
    async with httpx.AsyncClient() as client:
        model = OpenAICompatibleChatModel(
            client=client,
            url=url,
            api_key="sk-unit-0123456789",
            default_model="m",
            default_temperature=0.0,
            default_max_tokens=10,
            first_token_timeout=5.0,
            **provider_row("openai"),
        )
        events = await stream_events(model, [Message(role=Role.USER, content="hello")])
    assert texts(events) == ["Hi"]
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["user-agent"] == f"aura-agent/{__version__}"
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.headers["authorization"] == "Bearer sk-unit-0123456789"
    assert "cookie" not in sent.headers


async def test_transport_for_still_finds_mounts_through_httpx_private_lookup() -> None:
    """`transport_for` rests on httpx's private `AsyncClient._transport_for_url`: an httpx upgrade
    that renames it, changes its signature or what it returns fails here first."""
    assert list(inspect.signature(httpx.AsyncClient._transport_for_url).parameters) == [
        "self",
        "url",
    ]
    custom = httpx.MockTransport(lambda _: httpx.Response(200))
    default = httpx.MockTransport(lambda _: httpx.Response(204))
    async with httpx.AsyncClient(transport=default, mounts={"http://127.0.0.1:9": custom}) as c:
        assert transport_for(c, httpx.URL("http://127.0.0.1:9/v1/chat")) is custom
        assert transport_for(c, httpx.URL("http://127.0.0.1:10/v1/chat")) is default
        assert transport_for(c, httpx.URL("https://127.0.0.1:9/v1/chat")) is default
    async with httpx.AsyncClient(mounts={"http://127.0.0.1:9": custom}) as c:
        assert transport_for(c, httpx.URL("http://127.0.0.1:9/")) is custom
        assert isinstance(transport_for(c, httpx.URL("http://llm.test/")), httpx.AsyncHTTPTransport)
