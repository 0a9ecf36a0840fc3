"""The upstream SSE decoder: WHATWG framing rules, chunk boundaries anywhere, and the EOF policy."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aura_agent.adapters.llm.sse_decoder import SSEDecoder, SSEError


def decode_all(*chunks: bytes) -> list[str]:
    decoder = SSEDecoder()
    out: list[str] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.flush()


def split_every(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_whole_event_in_one_chunk() -> None:
    assert SSEDecoder().feed(b'data: {"a":1}\n\n') == ['{"a":1}']


def test_several_events_in_one_chunk_keep_their_order() -> None:
    assert SSEDecoder().feed(b"data: one\n\ndata: two\n\ndata: three\n\n") == [
        "one",
        "two",
        "three",
    ]


def test_event_is_dispatched_only_by_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == ["x"]


@pytest.mark.parametrize("cut", range(1, len(b"data: hello\n\ndata: world\n\n")))
def test_split_at_any_byte(cut: int) -> None:
    body = b"data: hello\n\ndata: world\n\n"
    assert decode_all(body[:cut], body[cut:]) == ["hello", "world"]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_all_three_line_endings(newline: bytes) -> None:
    body = b"data: a" + newline + b"data: b" + newline + newline + b"data: c" + newline + newline
    assert SSEDecoder().feed(body) == ["a\nb", "c"]


def test_cr_then_lf_across_chunks_is_one_line_break() -> None:
    # Were "\r" + "\n" two breaks, the blank line would dispatch "a" on its own.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n") == ["a\nb"]


def test_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\ndata: b\n\n") == ["a\nb"]


def test_cr_at_chunk_end_followed_by_cr_is_two_breaks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == ["a"]


def test_lone_cr_then_lf_chunk_dispatches() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == ["a"]
    assert decoder.feed(b"\n") == []  # the "\n" completes the second "\r", it is no blank line
    assert decoder.feed(b"data: b\n\n") == ["b"]


def test_comment_lines_are_ignored() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": OPENROUTER PROCESSING\n\n") == []
    assert decoder.feed(b":\n\n: another\n\n") == []
    assert decoder.feed(b"data: a\n: in the middle\ndata: b\n\n") == ["a\nb"]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert SSEDecoder().feed(b"data:x\n\ndata:  y\n\ndata:\tz\n\n") == ["x", " y", "\tz"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert SSEDecoder().feed(b"data: first\ndata:\ndata: third\n\n") == ["first\n\nthird"]


def test_empty_data_dispatches_an_empty_payload() -> None:
    assert SSEDecoder().feed(b"data:\n\ndata\n\n") == ["", ""]


def test_field_name_without_colon_has_empty_value() -> None:
    assert SSEDecoder().feed(b"data: a\ndata\n\n") == ["a\n"]


def test_other_fields_are_ignored_and_do_not_break_parsing() -> None:
    body = b"event: message\nid: 7\nretry: 1000\ndata: payload\nfoo: bar\n\n"
    assert SSEDecoder().feed(body) == ["payload"]


def test_event_without_data_is_not_dispatched() -> None:
    assert SSEDecoder().feed(b"event: ping\nid: 1\n\ndata: next\n\n") == ["next"]


@pytest.mark.parametrize(
    "line", [b"data2: x", b"database: x", b"data : x", b"Data: x", b" data: x"]
)
def test_lookalike_fields_are_not_data(line: bytes) -> None:
    assert SSEDecoder().feed(line + b"\ndata: real\n\n") == ["real"]


def test_done_marker_is_an_ordinary_payload() -> None:
    assert SSEDecoder().feed(b"data: [DONE]\n\n") == ["[DONE]"]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_utf8_split_across_chunks(size: int) -> None:
    text = "héllo wörld 🎉 日本語"
    body = f"data: {text}\n\n".encode()
    assert decode_all(*split_every(body, size)) == [text]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert SSEDecoder().feed(b"data: a\xffb\n\n") == ["a\ufffdb"]


@pytest.mark.parametrize("size", [1, 2, 4, 100])
def test_byte_order_mark_at_stream_start_is_skipped(size: int) -> None:
    body = b"\xef\xbb\xbfdata: x\n\n"
    assert decode_all(*split_every(body, size)) == ["x"]


def test_byte_order_mark_later_is_part_of_the_field_name() -> None:
    assert SSEDecoder().feed(b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: c\n\n") == ["a", "c"]


def test_flush_dispatches_an_event_whose_lines_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n\ndata: [DONE]\n") == ["one"]
    assert decoder.flush() == ["[DONE]"]


def test_flush_discards_a_line_cut_off_halfway() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"choices": [{"del') == []
    assert decoder.flush() == []


def test_flush_discards_an_event_whose_last_line_is_cut() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b") == []
    assert decoder.flush() == []


def test_flush_resets_the_decoder() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: stale\n")
    assert decoder.flush() == ["stale"]
    assert decoder.flush() == []
    assert decoder.feed(b"data: fresh\n\n") == ["fresh"]


def test_flush_without_pending_event_is_empty() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n: comment\n") == ["a"]
    assert decoder.flush() == []


def test_an_endless_line_is_refused() -> None:
    decoder = SSEDecoder(max_line_bytes=16)
    decoder.feed(b"data: " + b"x" * 10)
    with pytest.raises(SSEError):
        decoder.feed(b"x" * 10)


def test_long_lines_within_the_limit_are_fine() -> None:
    decoder = SSEDecoder(max_line_bytes=16)
    assert decoder.feed(b"data: " + b"x" * 10 + b"\n\n") == ["x" * 10]


# -- property: framing never changes the payloads ------------------------------------------------

_line_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=20,
)
_event = st.lists(_line_text, min_size=1, max_size=4)
_newline = st.sampled_from([b"\n", b"\r\n", b"\r"])
_noise = st.sampled_from(
    [b": OPENROUTER PROCESSING", b":", b"event: message", b"id: 42", b"retry: 10"]
)


@st.composite
def encoded_streams(draw: st.DrawFn) -> tuple[list[str], bytes, list[int]]:
    """Events, their wire form with random line endings and noise lines, and cut points."""
    events = draw(st.lists(_event, max_size=6))
    parts: list[bytes] = []

    def newline() -> bytes:
        # "\r" directly followed by "\n" is a single break by definition, so a blank line
        # right after a "\r" must start with "\r" to stay a blank line.
        nl = draw(_newline)
        if parts and parts[-1] == b"\r" and nl == b"\n":
            nl = b"\r\n"
        parts.append(nl)
        return nl

    for lines in events:
        if draw(st.booleans()):  # a comment-only "event" or stray fields between events
            parts.append(draw(_noise))
            newline()
            newline()
        for line in lines:
            if draw(st.booleans()):
                parts.append(draw(_noise))
                newline()
            parts.append(b"data: " + line.encode())
            newline()
        newline()
    body = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    return ["\n".join(lines) for lines in events], body, cuts


@settings(max_examples=300, deadline=None)
@given(encoded_streams())
def test_any_framing_decodes_to_the_same_payloads(
    case: tuple[list[str], bytes, list[int]],
) -> None:
    expected, body, cuts = case
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode_all(*chunks) == expected
