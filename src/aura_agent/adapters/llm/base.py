"""The part of a streaming HTTP model adapter that does not depend on the vendor.

`SSEChatModel` sends one POST, reads the event stream, and maps every transport failure to a
domain error; a subclass says how to build the request (`_request_body`) and how to read one
`data:` payload (`_new_parser`). Two guarantees live here so that no vendor adapter can get them
wrong:

* Cancellation: each response's `aclose` is pushed on an `AsyncExitStack` the moment it arrives
  (so a subclass may replace a rejected request), and the generator's `yield`s happen inside
  the stack; closing or cancelling the generator closes the upstream connection at once, and
  providers stop billing. The request itself skips httpx's client layers (`upstream_http`).
* The first-token deadline: the httpx read timeout is the longest silence allowed between
  chunks, which cannot catch a model that never starts while keep-alives (OpenRouter comments,
  Anthropic pings) keep the connection busy. So each request has one `asyncio.timeout` scope
  that is switched off at the first token. Once switched off it never fires, so later `anext`
  calls may come from another task than the first one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Final, NotRequired, TypedDict, Unpack

import httpx

from aura_agent.adapters.http_client.upstream_http import USER_AGENT, UpstreamEndpoint, body_chunks
from aura_agent.adapters.llm.error_bodies import read_bounded
from aura_agent.adapters.llm.errors import ErrorMapper
from aura_agent.adapters.llm.sse_decoder import SSEDecoder, SSEError
from aura_agent.domain.errors import ChatModelError
from aura_agent.domain.models import (
    ChatEvent,
    GenerationOptions,
    Message,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    Usage,
)

__all__ = ["Endpoint", "PayloadParser", "SSEChatModel"]

_DRAIN_TIMEOUT: Final = 0.25
_DRAIN_LIMIT: Final = 64 * 1024

PayloadParser = Callable[[str], list[ChatEvent] | None]
"""Reads one `data:` payload: the events it carries, or None for the vendor's end marker.

It raises a `ChatModelError` for a malformed payload or an in-band error. A parser is created per
stream, so it may keep state (Anthropic spreads usage over two events)."""


class Endpoint(TypedDict):
    """What every streaming adapter is built with, whatever its vendor: the shared client, the
    route's endpoint and model, the defaults, and the provider's name and label (from its row)."""

    client: httpx.AsyncClient
    url: str
    default_model: str
    default_temperature: float | None
    """Sent when a request sets no temperature; None: send none (the vendor's default)."""
    default_max_tokens: int | None
    """Likewise for the length limit (a vendor that requires one has its own fallback)."""
    first_token_timeout: float
    provider: str
    label: str
    check_timeout: NotRequired[float]


class SSEChatModel:
    """Base of the adapters for streaming HTTP APIs; see the module docstring.

    A subclass adds its vendor's `headers` (auth included), the `secrets` its errors must never
    quote, and the cheap authenticated `probe_url` of `check()`.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        probe_url: str,
        probe_headers: Mapping[str, str],
        **endpoint: Unpack[Endpoint],
    ) -> None:
        client = endpoint["client"]
        self._client = client
        # URL and headers prepared once
        self._endpoint = UpstreamEndpoint(client, endpoint["url"], headers)
        self._errors = ErrorMapper(
            provider=endpoint["provider"], label=endpoint["label"], secrets=secrets
        )
        self._default_model = endpoint["default_model"]
        self._default_temperature = endpoint["default_temperature"]
        self._default_max_tokens = endpoint["default_max_tokens"]
        self._first_token_timeout = endpoint["first_token_timeout"]
        self._probe_url = probe_url
        self._probe_headers = {"User-Agent": USER_AGENT, **probe_headers}
        self._check_timeout = endpoint.get("check_timeout", 5.0)

    @property
    def provider(self) -> str:
        """The provider name carried by errors and logs."""
        return self._errors.provider

    @property
    def default_model(self) -> str:
        """The model used when the options name none."""
        return self._default_model

    # -- for subclasses ---------------------------------------------------------------------------

    def _request_body(self, messages: Sequence[Message], options: GenerationOptions) -> bytes:
        """The JSON body of the streaming request."""
        raise NotImplementedError

    def _new_parser(self) -> PayloadParser:
        """A parser for one stream's payloads."""
        raise NotImplementedError

    async def _open(
        self, stack: AsyncExitStack, messages: Sequence[Message], options: GenerationOptions
    ) -> httpx.Response:
        """Send the request and return the accepted streaming response (or raise)."""
        resp = await self._post(stack, self._request_body(messages, options))
        await self._accept(resp)
        return resp

    async def _post(self, stack: AsyncExitStack, body: bytes) -> httpx.Response:
        """Start the POST; the response is closed when `stack` exits."""
        resp = await self._endpoint.post(body)
        # registered before any other `await`, so no cancellation can leave it open
        stack.push_async_callback(resp.aclose)
        return resp

    async def _accept(self, resp: httpx.Response) -> None:
        """Raise the domain error for a response that is not an event stream."""
        if not resp.is_success:
            body = await read_bounded(resp)
            raise self._errors.http_error(resp.status_code, body, resp.headers.get("retry-after"))
        if "json" in resp.headers.get("content-type", ""):
            raise self._errors.json_instead_of_stream(await read_bounded(resp))

    # -- the stream -------------------------------------------------------------------------------

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncGenerator[ChatEvent, None]:
        """Stream the reply: `TextDelta`s and `ToolCallDelta`s in the order the vendor sent
        them, then at most one `Usage`, then one `StreamEnd`.

        A reply is complete once the vendor gave a finish reason or its end marker; a body that
        ends before either is a `ProviderStreamError`, never a short success.
        """
        errors = self._errors
        parse = self._new_parser()
        decoder = SSEDecoder()
        finish: str | None = None
        usage: Usage | None = None
        ended = False  # the vendor's end marker ([DONE], message_stop) was read
        started = False  # a token was yielded: the first-token deadline no longer applies
        first_token = asyncio.timeout(self._first_token_timeout)
        try:
            async with first_token, AsyncExitStack() as stack:
                resp = await self._open(stack, messages, options)
                chunks = body_chunks(resp)
                eof = False
                while not (eof or ended):
                    try:
                        payloads = decoder.feed(await anext(chunks))
                    except StopAsyncIteration:
                        payloads = decoder.flush()
                        eof = True
                    except httpx.HTTPError:
                        if finish is None:
                            raise
                        break  # the reply is complete; only a trailing usage report is lost
                    texts: list[TextDelta | ToolCallDelta] = []  # this read's output, in order
                    failure: ChatModelError | None = None
                    for payload in payloads:
                        try:
                            events = parse(payload)
                        except ChatModelError as exc:
                            failure = exc  # the tokens before it still go out first
                            break
                        if events is None:
                            ended = True
                            await _drain(chunks)
                            break
                        for event in events:
                            if type(event) is TextDelta or type(event) is ToolCallDelta:
                                texts.append(event)
                            elif type(event) is StreamEnd:
                                finish = event.finish_reason
                            elif type(event) is Usage:
                                usage = event  # the last report wins
                    if texts:
                        if not started:
                            first_token.reschedule(None)
                            started = True
                        last = texts.pop()
                        for text in texts:
                            yield (
                                TextDelta(text.text, more=True) if type(text) is TextDelta else text
                            )
                        yield last
                    if failure is not None:
                        raise failure
        except TimeoutError:
            if first_token.expired():
                raise errors.first_token_timeout(self._first_token_timeout) from None
            raise
        except httpx.TimeoutException as exc:
            raise errors.timeout(exc, self._client.timeout) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise errors.transport(started=started) from exc
        except SSEError as exc:
            raise errors.invalid_stream() from exc

        if finish is None and not ended:
            raise errors.ended_early()
        if usage is not None:
            yield usage
        yield StreamEnd(finish_reason=finish or "stop")

    async def check(self) -> None:
        """Probe an authenticated, cheap endpoint; only the status line is read, not the body."""
        errors = self._errors
        try:
            async with self._client.stream(
                "GET",
                self._probe_url,
                headers=self._probe_headers,
                timeout=httpx.Timeout(self._check_timeout),
            ) as resp:
                status = resp.status_code
        except httpx.TimeoutException as exc:
            raise errors.probe_timeout(self._check_timeout) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise errors.transport(started=False) from exc
        if not 200 <= status < 300:
            raise errors.probe_failed(status)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows the end marker (normally just the end of the body), briefly.

    A response closed before its end forces httpx to drop the connection; reading the last
    bytes lets the shared client reuse it and saves a TLS handshake on the next request.
    """
    read = 0
    try:
        async with asyncio.timeout(_DRAIN_TIMEOUT):
            async for part in chunks:
                read += len(part)
                if read > _DRAIN_LIMIT:
                    return
    except (TimeoutError, httpx.HTTPError):
        pass
