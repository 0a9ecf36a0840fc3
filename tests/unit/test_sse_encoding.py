"""The downstream SSE encoder: any token survives encoding and a spec-compliant parse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aura_agent.http.sse.encoding import DONE, KEEPALIVE, encode_data, encode_error, encode_event
from tests.support import parse_sse, tokens_of


def _sse_normalised(text: str) -> str:
    """What SSE promises to deliver: \\r\\n and lone \\r become \\n."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_plain_token_is_one_data_line() -> None:
    assert encode_data("Hello") == b"data: Hello\n\n"


def test_multiline_token_spans_several_data_lines() -> None:
    assert encode_data("a\nb\r\nc\rd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"


def test_leading_space_and_trailing_newline_survive() -> None:
    events = parse_sse(encode_data(" indented\n") + DONE)
    assert tokens_of(events) == [" indented\n"]


def test_done_and_error_events_are_named() -> None:
    events = parse_sse(encode_data("x") + encode_error("it broke\nbadly") + DONE)
    assert [(e.event, e.data) for e in events] == [
        ("message", "x"),
        ("error", "it broke\nbadly"),
        ("done", "[DONE]"),
    ]


def test_keepalive_is_a_comment_that_parsers_skip() -> None:
    assert KEEPALIVE.startswith(b":")
    assert tokens_of(parse_sse(KEEPALIVE + encode_data("after"))) == ["after"]


def test_named_event_encoding() -> None:
    assert encode_event("usage", '{"a":1}') == b'event: usage\ndata: {"a":1}\n\n'


@given(st.lists(st.text(min_size=1), min_size=1, max_size=8))
def test_any_tokens_round_trip_through_a_spec_parser(tokens: list[str]) -> None:
    body = b"".join(encode_data(token) for token in tokens) + DONE
    events = parse_sse(body)
    assert tokens_of(events) == [_sse_normalised(token) for token in tokens]
    assert events[-1].event == "done"
