"""Benchmark `RedisSessionStore.append_turn` against a real Redis (not a test).

    uv run python bench/redis_append.py --workers 50 --seconds 5

Each worker appends turns to its own session (or, with --shared, all to one session) until the
time or turn budget runs out; keys live under a unique `aura-bench:<uuid>:` prefix and are
deleted at the end. Prints throughput and per-call latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

from aura_agent.adapters.session_store.redis import (
    RedisSessionStore,
    close_redis_client,
    create_redis_client,
)
from aura_agent.domain.models import Message, Role


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cluster", action="store_true", help="the URL is a Redis Cluster node")
    parser.add_argument("--workers", type=int, default=50, help="concurrent appenders")
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget")
    parser.add_argument("--turns", type=int, default=1_000_000, help="turn budget (all workers)")
    parser.add_argument("--chars", type=int, default=500, help="characters per message")
    parser.add_argument("--max-messages", type=int, default=100)
    parser.add_argument("--shared", action="store_true", help="all workers share one session")
    return parser.parse_args()


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def run(args: argparse.Namespace) -> int:
    prefix = f"aura-bench:{uuid.uuid4().hex}:"
    client = create_redis_client(args.url, cluster=args.cluster, socket_timeout=2.0)
    store = RedisSessionStore(
        client, key_prefix=prefix, max_messages=args.max_messages, ttl_seconds=600
    )
    user = Message(role=Role.USER, content="q" * args.chars)
    assistant = Message(role=Role.ASSISTANT, content="a" * args.chars)
    latencies: list[float] = []
    budget = args.turns
    deadline = 0.0

    async def worker(number: int) -> None:
        nonlocal budget
        session = "shared" if args.shared else f"worker-{number}"
        while budget > 0 and time.perf_counter() < deadline:
            budget -= 1
            started = time.perf_counter()
            await store.append_turn(session, user, assistant)
            latencies.append(time.perf_counter() - started)

    try:
        await store.check()
        await store.append_turn("warm-up", user, assistant)  # connect and load the script
        deadline = time.perf_counter() + args.seconds
        started = time.perf_counter()
        await asyncio.gather(*(worker(number) for number in range(args.workers)))
        elapsed = time.perf_counter() - started
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for key in keys:  # one key per call: keys may live on different cluster nodes
            await client.delete(key)
        await close_redis_client(client)

    latencies.sort()
    print(
        f"workers={args.workers} chars={args.chars} shared={args.shared} "
        f"python={sys.version.split()[0]}"
    )
    print(f"turns={len(latencies)} in {elapsed:.2f} s -> {len(latencies) / elapsed:,.0f} turns/s")
    print(
        "latency ms: "
        f"p50={percentile(latencies, 0.50) * 1e3:.2f} "
        f"p99={percentile(latencies, 0.99) * 1e3:.2f} "
        f"max={latencies[-1] * 1e3:.2f} "
        f"mean={statistics.fmean(latencies) * 1e3:.2f}"
    )
    return 0


def main() -> int:
    return asyncio.run(run(parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
