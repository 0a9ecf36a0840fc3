"""The terminal client's SSE parsing (`aura_agent.chat_client`) against the WHATWG rules.

A small reference implementation of the event-stream algorithm is the oracle: for any stream of
fields, comments, blank lines, line endings and chunk boundaries, the client must dispatch the
same events, and a reply the server encodes must come back token for token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aura_agent.chat_client import ChatClient, Reply, iter_events, iter_lines
from aura_agent.http.sse.encoding import DONE, KEEPALIVE, encode_data, encode_error

_SSE_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# What str.splitlines (and so httpx's iter_lines) also treats as a line break, but SSE does not.
_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def reference_events(stream: str) -> list[tuple[str, str]]:
    """The WHATWG event-stream interpretation, for `(event type, data)` pairs."""
    stream = stream.removeprefix("\ufeff")
    lines = _SSE_LINE_BREAK.split(stream)[:-1]  # the last piece is unterminated: dropped at EOF
    events: list[tuple[str, str]] = []
    data, event = "", ""
    for line in lines:
        if not line:
            if data:
                events.append((event or "message", data.removesuffix("\n")))
            data, event = "", ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event = value
    return events


def client_events(lines: list[str]) -> list[tuple[str, str]]:
    return [(e.event, e.data) for e in iter_events(lines)]


def _text(exclude: str = "") -> st.SearchStrategy[str]:
    return st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\r\n" + exclude),
        max_size=12,
    )


def _lines(exclude: str = "") -> st.SearchStrategy[list[str]]:
    value = _text(exclude)
    line = st.one_of(
        st.just(""),
        st.just("data"),
        st.builds(lambda v: "data:" + v, value),
        st.builds(lambda v: "data: " + v, value),
        st.builds(lambda v: "event: " + v, st.sampled_from(["", "done", "error", "x"])),
        st.builds(lambda v: "event:" + v, value),
        st.builds(lambda v: ": " + v, value),
        st.builds(lambda v: "id: " + v, value),
        st.just("retry: 100"),
        st.builds(lambda v: "other: " + v, value),
        value.filter(lambda v: not v.startswith(("data", "event", ":"))),
    )
    return st.lists(line, max_size=25)


@st.composite
def streams(draw: st.DrawFn, exclude: str = "") -> str:
    lines = draw(_lines(exclude))
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines)))
    body = "".join(line + end for line, end in zip(lines, endings, strict=False))
    if draw(st.booleans()):
        body = "\ufeff" + body
    return body + draw(st.sampled_from(["", "data: cut off"]))


@given(streams())
@settings(max_examples=300)
def test_the_parser_follows_the_whatwg_rules(stream: str) -> None:
    """Given the lines (split as SSE splits them), the events are the specification's."""
    lines = _SSE_LINE_BREAK.split(stream)[:-1]
    assert client_events(lines) == reference_events(stream)


def _chunked(body: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        yield body[start:cut]
        start = cut
    yield body[start:]


@given(streams(exclude=_OTHER_BREAKS), st.lists(st.integers(min_value=0), max_size=8))
@settings(max_examples=300)
def test_over_http_any_chunking_gives_the_same_events(stream: str, cuts: list[int]) -> None:
    """Bytes cut anywhere (inside a character, between \\r and \\n) change nothing."""
    body = stream.encode()
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=_chunked(body, cuts)
    )
    assert client_events(list(response.iter_lines())) == reference_events(stream)


def _client_for(body: bytes, cuts: list[int]) -> ChatClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "x-session-id": "s1"},
            content=_chunked(body, cuts),
        )

    return ChatClient(
        "http://aura.test", "key", http=httpx.Client(transport=httpx.MockTransport(handler))
    )


@given(
    st.lists(_text(_OTHER_BREAKS + "\r\n") | st.sampled_from(["a\nb", "x\r\ny", "\n", " "])),
    st.one_of(st.none(), _text(_OTHER_BREAKS)),
    st.lists(st.integers(min_value=0), max_size=8),
)
@settings(max_examples=200)
def test_a_reply_the_server_encodes_comes_back_token_for_token(
    tokens: list[str], error: str | None, cuts: list[int]
) -> None:
    sent = [token for token in tokens if token]  # the server never sends empty tokens
    body = KEEPALIVE + b"".join(encode_data(token) for token in sent)
    body += DONE if error is None else encode_error(error)
    client = _client_for(body, cuts)
    received: list[str] = []
    reply = client.send("hi", received.append)
    assert received == [token.replace("\r\n", "\n").replace("\r", "\n") for token in sent]
    assert reply == (Reply("done") if error is None else Reply("error", error))
    assert client.session_id == "s1"


def test_a_reply_cut_off_before_its_end_is_reported_as_cut() -> None:
    client = _client_for(encode_data("partial") + b"data: never dispatch", [])
    received: list[str] = []
    assert client.send("hi", received.append).outcome == "cut"
    assert received == ["partial"]


@pytest.mark.parametrize("separator", list(_OTHER_BREAKS), ids=lambda c: f"U+{ord(c):04X}")
def test_tokens_with_other_unicode_line_separators_survive(separator: str) -> None:
    token = f"before{separator}after"
    client = _client_for(encode_data(token) + DONE, [])
    received: list[str] = []
    assert client.send("hi", received.append) == Reply("done")
    assert received == [token]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_lines_split_only_on_cr_lf_and_crlf_whatever_the_chunking(size: int) -> None:
    raw = "a\r\nb\rc\nd\u2028e\x0cf\r\n\r\né€\r".encode() + b"tail"
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    assert list(iter_lines(chunks)) == ["a", "b", "c", "d\u2028e\x0cf", "", "é€", "tail"]
