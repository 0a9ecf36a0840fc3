"""The streaming POST to a provider, handed straight to the shared client's transport.

`AsyncClient.stream()` runs, on every request, layers this relay never uses: `build_request`
re-parses the URL and merges headers, `send` runs the auth flow and the redirect loop, and every
response goes through `Cookies.extract_cookies` (urllib request objects built only for our jar to
refuse each cookie). Profiled, they were a large share of the gateway's CPU per stream
(docs/transports.md). `UpstreamEndpoint` keeps what matters and drops the rest:

* the URL is parsed and the headers prepared once per adapter, not per request;
* the request goes to the transport httpx itself would pick for the URL (`transport_for`), so
  mounts, proxies from the environment and test mocks (pytest-httpx patches the transport) work
  as before, with the client's timeout as the request's `timeout` extension, as httpx sets it;
* no auth flow (the client has none; Basic credentials in the URL still become the Authorization
  header, as httpx makes them), no redirects (the client has `follow_redirects=False`, so a 3xx
  was already returned as is), and no cookies in either direction (the client is shared by every
  tenant and its jar refuses them all, see `client.build_client`).

The caller owns the returned response and must `await response.aclose()` on every path, as
`client.stream()` did: that returns a fully read connection to the pool, and hangs up at once on
a stream cut short (a cancelled reply), so the provider stops generating.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import AsyncIterator, Mapping
from typing import Final

import httpx

from aura_agent import __version__

__all__ = ["DEFAULT_HEADERS", "USER_AGENT", "UpstreamEndpoint", "body_chunks", "transport_for"]

USER_AGENT: Final = f"aura-agent/{__version__}"
DEFAULT_HEADERS: Final = {
    "User-Agent": USER_AGENT,
    # `identity`, not httpx's `gzip, deflate, ...`: token events are tiny, so compression saves
    # little bandwidth but costs a decoder pass per chunk, and a compressing proxy on the way may
    # hold tokens back to fill a block. A server that compresses anyway is still read correctly:
    # `body_chunks` (and `read_bounded`) decode by Content-Encoding.
    "Accept-Encoding": "identity",
}


def transport_for(client: httpx.AsyncClient, url: httpx.URL) -> httpx.AsyncBaseTransport:
    """The transport `client` sends `url` through: its mount for the URL, or its default one.

    httpx has no public API for this; `_transport_for_url` is what `AsyncClient.send` itself calls
    and is unchanged through 0.28 (pyproject pins httpx below 0.29). This is the only use of it.
    """
    return client._transport_for_url(url)


class UpstreamEndpoint:
    """One provider URL with its headers, ready to take POST bodies; see the module docstring.

    `headers` are added after `DEFAULT_HEADERS` and may replace them (names are case-insensitive).
    The client's own default headers and auth are not used: httpx's default headers are replaced
    by `DEFAULT_HEADERS`, and the app's client sets neither.
    """

    __slots__ = ("_client", "_head", "_url", "_url_text")

    def __init__(self, client: httpx.AsyncClient, url: str, headers: Mapping[str, str]) -> None:
        self._client = client
        self._url_text = url
        try:
            parsed: httpx.URL | None = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None  # raised again by each request, where it is mapped like any failure
        self._url = parsed
        head = httpx.Headers(DEFAULT_HEADERS)
        head.update(headers)
        if parsed is not None and (parsed.username or parsed.password):
            # as httpx's client does for credentials in the URL (a server behind Basic auth)
            userpass = f"{parsed.username}:{parsed.password}".encode()
            head["Authorization"] = f"Basic {b64encode(userpass).decode()}"
        if parsed is not None and parsed.host and "Host" not in head:
            # first, as `httpx.Request` puts it; only Content-Length is left for each request
            head = httpx.Headers([(b"Host", parsed.netloc), *head.raw])
        self._head = head

    def request(self, body: bytes) -> httpx.Request:
        """The POST of `body`, with the headers and timeout `client.stream()` would have sent.

        Built from a prepared stream rather than `content=`: httpx would otherwise copy and
        re-encode every header again per request just to add Host and Content-Length.
        """
        url = self._url if self._url is not None else httpx.URL(self._url_text)
        headers = httpx.Headers(self._head)
        headers["Content-Length"] = str(len(body))
        request = httpx.Request(
            "POST",
            url,
            headers=headers,
            stream=httpx.ByteStream(body),
            extensions={"timeout": self._client.timeout.as_dict()},
        )
        request.read()  # sets `request.content`, as `content=` would (transports may use either)
        return request

    async def post(self, body: bytes) -> httpx.Response:
        """Send the POST and return the response with its body still unread (the caller closes it).

        Raises what `client.send()` would: `RuntimeError` on a closed client, and httpx's
        `RequestError`s (with `.request` set) for transport failures.
        """
        client = self._client
        if client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        request = self.request(body)
        try:
            response = await transport_for(client, request.url).handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        response.request = request
        return response


def body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives, through as few layers as possible.

    Without a Content-Encoding this is the transport's own stream, skipping the two generators
    (`aiter_bytes`, `aiter_raw`) httpx stacks on it for every read; otherwise httpx decodes. A
    body already read (a test double's) is left to httpx too. Either way the response must
    still be closed by its owner.
    """
    if "content-encoding" in response.headers or response.is_stream_consumed:
        return response.aiter_bytes()  # decoded, or the body already read (or StreamConsumed)
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise RuntimeError("Attempted to call an async iterator on an sync stream.")
    response.is_stream_consumed = True
    return aiter(stream)
