"""The benchmark harness: the load generator's parsing and counting, the driver's arithmetic.

Fast and untimed: the load generator runs against an in-process fake OpenRouter on loopback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bench import loadgen
from bench import run as driver
from bench.loadgen import ProtocolError, ResponseParser

from aura_agent.http.sse.encoding import DONE, KEEPALIVE, encode_data, encode_error
from aura_agent.testing.fake_openrouter import FakeOpenRouter, Script

# -- the response parser -----------------------------------------------------------------------

_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def feed_in_slices(parser: ResponseParser, data: bytes, size: int) -> None:
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])


TOKENS = ["Hel", "lo", " wor\nld", "data: not a new event", "line\n", "\n\n", "x"]


def gateway_reply(tokens: list[str]) -> bytes:
    """What the gateway sends: a keep-alive, one chunk per token, then done."""
    return _HEAD + chunked(KEEPALIVE, *(encode_data(t) for t in tokens), DONE)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_chat_tokens_are_counted_whatever_the_read_boundaries(size: int) -> None:
    parser = ResponseParser("chat")
    feed_in_slices(parser, gateway_reply(TOKENS), size)
    assert parser.finished
    assert parser.status == 200
    assert parser.tokens == len(TOKENS)
    assert parser.done
    assert not parser.error_event
    assert parser.keep_alive
    assert parser.leftover == b""


def test_events_split_across_chunks_are_counted_once() -> None:
    body = b"".join(encode_data(t) for t in ["a", "b", "c"]) + DONE
    pieces = [body[i : i + 5] for i in range(0, len(body), 5)]
    parser = ResponseParser("chat")
    parser.feed(_HEAD + chunked(*pieces))
    assert (parser.tokens, parser.done, parser.finished) == (3, True, True)


def test_error_event_is_flagged() -> None:
    parser = ResponseParser("chat")
    parser.feed(_HEAD + chunked(encode_data("a"), encode_error("rate limited")))
    assert parser.finished
    assert parser.error_event
    assert not parser.done
    assert parser.tokens == 1


def test_content_length_error_response() -> None:
    body = b'{"title": "Unauthorized"}'
    parser = ResponseParser("chat")
    parser.feed(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
    assert parser.finished
    assert parser.status == 401
    assert parser.tokens == 0


def openai_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def test_openai_chunks_count_non_empty_content_only() -> None:
    def delta(**fields: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}

    events = [
        b": OPENROUTER PROCESSING\n\n",
        openai_event(delta(role="assistant")),
        openai_event(delta(content="Hi")),
        openai_event(delta(content='say "content":"x"')),
        openai_event(delta(content="")),
        openai_event({"choices": [], "usage": {"completion_tokens": 2}}),
        openai_event("[DONE]"),
    ]
    parser = ResponseParser("upstream")
    feed_in_slices(parser, _HEAD + chunked(*events), 5)
    assert (parser.tokens, parser.done, parser.error_event) == (2, True, False)


def test_pipelined_bytes_after_the_response_are_left_over() -> None:
    parser = ResponseParser("chat")
    parser.feed(gateway_reply(["a"]) + b"HTTP/1.1 200 OK\r\n")
    assert parser.finished
    assert parser.leftover == b"HTTP/1.1 200 OK\r\n"


def test_bad_chunk_size_is_a_protocol_error() -> None:
    parser = ResponseParser("chat")
    with pytest.raises(ProtocolError):
        parser.feed(_HEAD + b"zz\r\ndata: x\n\n\r\n")


def test_eof_in_the_middle_of_a_chunked_body_is_an_error() -> None:
    parser = ResponseParser("chat")
    parser.feed(_HEAD + b"9\r\ndata: x\n\n\r\n")
    with pytest.raises(ConnectionResetError):
        parser.feed_eof()


def test_percentile_interpolates() -> None:
    assert loadgen.percentile([], 50) is None
    assert loadgen.percentile([3.0], 99) == 3.0
    assert loadgen.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert loadgen.percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0


# -- the load generator against the fake OpenRouter ----------------------------------------------


async def load(fake: FakeOpenRouter, **overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "mode": "upstream",
        "url": fake.chat_url,
        "concurrency": 2,
        "requests": 5,
        "duration": 30.0,
        "expected_tokens": 3,
        "timeout": 10.0,
    }
    options.update(overrides)
    return await loadgen.run_load(**options)


async def test_counts_streams_and_tokens_on_kept_alive_connections() -> None:
    async with FakeOpenRouter(default_script=Script(tokens=["a", "b", "c"])) as fake:
        result = await load(fake)
        assert fake.connections_total == 2  # one per virtual client, reused
    assert result["attempts"] == 5
    assert result["streams"] == 5
    assert result["failures"] == 0
    assert result["tokens"] == 15
    assert result["ttft_ms"]["p50"] is not None
    assert result["ttft_ms"]["p50"] <= result["total_ms"]["max"]
    json.dumps(result)  # the report is JSON


async def test_warmup_is_not_counted() -> None:
    async with FakeOpenRouter(default_script=Script(tokens=["a", "b", "c"])) as fake:
        result = await load(fake, warmup_requests=4, warmup_seconds=10.0)
        assert len(fake.chat_requests) == 9
    assert result["warmup"]["streams"] == 4
    assert result["streams"] == 5


async def test_a_dropped_connection_is_a_failure_and_the_client_reconnects() -> None:
    async with FakeOpenRouter(default_script=Script(tokens=["a", "b", "c"])) as fake:
        fake.enqueue(Script(tokens=["a", "b"], drop_after_tokens=True))
        result = await load(fake, concurrency=1, requests=3)
        assert fake.connections_total == 2
    assert result["streams"] == 2
    assert result["failure_kinds"] == {"connection_error": 1}
    assert result["tokens"] == 2 + 3 + 3  # what arrived before the drop counts as relayed


async def test_error_status_in_band_error_and_wrong_count_are_failures() -> None:
    async with FakeOpenRouter(default_script=Script(tokens=["a", "b", "c"])) as fake:
        fake.enqueue(
            Script(status=429, error_message="slow down"),
            Script(tokens=["a"], in_band_error={"code": 502, "message": "boom"}),
            Script(tokens=["a", "b"]),
            Script(tokens=["a", "b", "c"], send_done=False),
        )
        result = await load(fake, concurrency=1, requests=5)
    assert result["failure_kinds"] == {
        "status_429": 1,
        "error_event": 1,
        "token_count": 1,
        "missing_done": 1,
    }
    assert result["streams"] == 1


async def test_connection_refused_is_a_failure() -> None:
    async with FakeOpenRouter() as fake:
        url = fake.chat_url
    result = await loadgen.run_load(
        mode="upstream", url=url, concurrency=1, requests=2, duration=5.0, timeout=2.0
    )
    assert result["failures"] == 2
    assert set(result["failure_kinds"]) == {"connect_error"}


def test_chat_request_carries_the_key_and_body() -> None:
    target = loadgen.Target.build("chat", "http://127.0.0.1:9/chat", api_key="k1")
    head, _, body = target.request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /chat HTTP/1.1\r\n")
    assert b"\r\nx-api-key: k1" in head
    assert json.loads(body) == {"message": "bench"}
    assert b"Content-Length: %d" % len(body) in head
    openai = loadgen.Target.build("openai", "http://127.0.0.1:9/v1/chat/completions", "k2")
    assert b"Authorization: Bearer k2" in openai.request
    assert json.loads(openai.request.partition(b"\r\n\r\n")[2])["stream"] is True


# -- the driver ----------------------------------------------------------------------------------


def test_medians_per_key_and_failures_summed() -> None:
    runs: list[dict[str, float | None]] = [
        {"gateway.streams_per_s": 100.0, "gateway.failures": 0, "direct.ttft_p50_ms": None},
        {"gateway.streams_per_s": 300.0, "gateway.failures": 2, "direct.ttft_p50_ms": 1.0},
        {"gateway.streams_per_s": 200.0, "gateway.failures": 1},
    ]
    assert driver.median_metrics(runs) == {
        "gateway.streams_per_s": 200.0,
        "gateway.failures": 3,
        "direct.ttft_p50_ms": 1.0,
    }
    assert driver.median_metrics([{"a": 1.0}, {"a": 2.0}]) == {"a": 1.5}


def test_markdown_table_escapes_pipes() -> None:
    table = driver.markdown_table(("a", "b"), [["1", "x|y"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |"]


def test_table_rows_compare_gateway_with_direct() -> None:
    medians: dict[str, dict[str, float | None]] = {
        "ttft1": {
            "direct.ttft_p50_ms": 0.25,
            "gateway.ttft_p50_ms": 1.75,
            "direct.ttft_p99_ms": 0.5,
            "gateway.ttft_p99_ms": None,
        },
        "tput50": {
            "direct.streams_per_s": 4000.0,
            "gateway.streams_per_s": 1000.0,
            "gateway.failures": 0,
        },
        "workers": {
            "direct.streams_per_s": 4000.0,
            "gateway_w1.streams_per_s": 100.0,
            "gateway_w2.streams_per_s": 180.0,
        },
    }
    rows = {(r[0], r[1]): r[2:] for r in driver.table_rows(medians, [1, 2])}
    assert rows[("1 client, 64 tok back to back", "TTFT p50")] == ["0.25 ms", "1.75 ms", "+1.50 ms"]
    assert rows[("1 client, 64 tok back to back", "TTFT p99")] == ["0.50 ms", "—", "—"]
    assert rows[("50 clients, 64 tok back to back", "streams/s")] == ["4000", "1000", "x0.25"]
    assert rows[("2 worker(s), 50 clients (unpinned)", "streams/s")][2] == (
        "x0.045; x1.80 vs 1 worker"
    )


def test_flat_metrics_reads_both_sides() -> None:
    record = {
        "scenario": "slow1000",
        "direct": {"ttft_ms": {"p50": 1.0, "p99": 2.0}, "failures": 0, "streams": 10},
        "gateway": {
            "ttft_ms": {"p50": 3.0, "p99": 9.0},
            "failures": 1,
            "streams": 9,
            "gateway": {"peak_rss_mb": 80.5, "cpu_ms_per_1k_tokens": 12.0},
        },
    }
    flat = driver.flat_metrics(record)
    assert flat["direct.ttft_p99_ms"] == 2.0
    assert flat["gateway.ttft_p50_ms"] == 3.0
    assert flat["gateway.failures"] == 1
    assert flat["gateway.peak_rss_mb"] == 80.5
    assert flat["gateway.cpu_ms_per_1k_tokens"] == 12.0


def test_profile_summary_self_inclusive_and_packages() -> None:
    site = "/venv/lib/python3.11/site-packages"
    std = "/usr/lib/python3.11"
    collapsed = "\n".join(
        [
            f"run ({std}/asyncio/runners.py:118);send ({site}/httpx/_client.py:10);"
            f"is_idle ({site}/httpcore/_async/http11.py:5) 6",
            f"run ({std}/asyncio/runners.py:118);relay (/w/src/aura_agent/http/sse.py:3) 3",
            f"run ({std}/asyncio/runners.py:118) 1",
            "garbage line",
        ]
    )
    summary = driver.summarize_collapsed(collapsed, top=2)
    assert summary["samples"] == 10
    assert summary["top_self"] == [
        {"frame": "is_idle (httpcore/_async/http11.py)", "samples": 6, "pct": 60.0},
        {"frame": "relay (aura_agent/http/sse.py)", "samples": 3, "pct": 30.0},
    ]
    assert summary["on_every_stack"] == ["run (asyncio/runners.py)"]
    packages = {p["frame"]: p["pct"] for p in summary["packages_self"]}
    assert packages == {"httpcore": 60.0, "aura_agent": 30.0, "stdlib:asyncio": 10.0}


def test_warnings_name_disturbed_measurements_and_source_changes() -> None:
    runs = [
        {
            "scenario": "tput50",
            "run": 1,
            "source": "aaa",
            "direct": {"attempts": 1, "foreign_cpu_util": 0.02},
            "gateway": {"attempts": 1, "foreign_cpu_util": 0.6},
        },
        {"scenario": "tput50", "run": 2, "source": "bbb", "direct": {"attempts": 1}},
    ]
    assert driver.disturbance_warnings(runs) == [
        "tput50 run 1 gateway: other processes used 0.60 core(s) meanwhile",
        "the gateway source changed during the benchmark (aaa, bbb)",
    ]
    medians: dict[str, dict[str, float | None]] = {
        "tput50": {"direct.load_core_util": 1.0, "gateway.load_core_util": 0.95}
    }
    assert [w.split(":")[0] for w in driver.load_warnings(medians)] == ["tput50/gateway"]
