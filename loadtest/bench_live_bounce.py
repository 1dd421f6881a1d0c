"""Redis cost of the live 跳失率 (page views per visitor), side by side on the same batches.

A day of generated shop traffic goes through two batch processors writing under two
key prefixes: one as shipped, one whose sink leaves out the page views per visitor
(the apply script's ``V`` and ``W`` operations). They take each batch in turn, in
alternating order, so both see the same machine load. Prints the time Redis spent in
the apply script for each (``INFO commandstats``, ``cmdstat_evalsha`` usec), per
message and in all, their ratio, and the memory of the page-view hashes left at the end
(``MEMORY USAGE``). Needs the local stack (``./run up``).

    python -m loadtest.bench_live_bounce --visitors 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import redis

from loadtest.bench_scrape import partitioned
from loadtest.shop_generator import generate_shop
from streams.aggregators import BatchDelta
from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.store.clients import sync_client
from streams.store.sink import RedisSink
from streams.worker.pipeline import BatchProcessor, DeadLetterList, Record
from streams.worker.runtime import async_redis, batch_processor

BATCH = 2_000


def script_usec(client: Any) -> int:
    """Microseconds Redis has spent running the apply script so far (EVALSHA and EVAL)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("evalsha", "eval"))


def without_view_depth(processor: BatchProcessor) -> None:
    """Make ``processor``'s sink leave out the page views per visitor."""
    sink = processor.sink
    assert isinstance(sink, RedisSink)
    build = sink.build_script_call

    def stripped(
        shard: Shard, expected: int | None, last: int, delta: BatchDelta, now_ms: int
    ) -> tuple[list[str], list[str | int | bytes]]:
        delta.view_depth.clear()
        delta.depth_closed.clear()
        return build(shard, expected, last, delta, now_ms)

    sink.build_script_call = stripped  # type: ignore[method-assign,assignment]


async def run(visitors: int, seed: int) -> None:
    """Apply the day through both processors, then print the table."""
    base = Settings.from_env(os.environ)
    now_ms = int(time.time() * 1000)
    traffic = generate_shop(seed, now_ms - 86_400_000, 86_400 - 60, visitors)
    run_id = uuid.uuid4().hex[:8]
    prefixes = {name: f"bench-{run_id}-{name}" for name in ("with", "without")}
    client = async_redis(base)
    sync = sync_client(base.redis_url)
    processors = {
        name: batch_processor(replace(base, redis_prefix=prefix), client, DeadLetterList())
        for name, prefix in prefixes.items()
    }
    without_view_depth(processors["without"])
    per_shard = partitioned(traffic, base)
    usec: Counter[str] = Counter()
    turn = 0
    try:
        for shard, values in per_shard.items():
            for first in range(0, len(values), BATCH):
                records = [
                    Record(first + i, v) for i, v in enumerate(values[first : first + BATCH])
                ]
                order = ("with", "without") if turn % 2 == 0 else ("without", "with")
                turn += 1
                for name in order:
                    before = script_usec(sync)
                    await processors[name].process(shard, records)
                    usec[name] += script_usec(sync) - before
        messages = sum(len(v) for v in per_shard.values())
        memory, fields = 0, 0
        for key in sync.scan_iter(match=f"{prefixes['with']}:*:vp:*", count=1000):
            memory += int(sync.memory_usage(key, samples=0) or 0)
            fields += int(sync.hlen(key))
        views = sum(1 for k, _ in traffic.messages["clickstream"] if k)
        print(f"day of {visitors:,} visitors: {messages:,} messages, {views:,} on the clickstream")
        print(f"{'apply script':<34}{'Redis ms':>10}{'µs / message':>14}")
        for name in ("without", "with"):
            label = f"{name} page views per visitor"
            print(f"{label:<34}{usec[name] / 1000:>10,.0f}{usec[name] / messages:>14.2f}")
        print(f"ratio with / without: {usec['with'] / max(1, usec['without']):.3f}")
        print(
            f"page-view hashes left open: {fields:,} visitor fields, {memory / 1e6:.1f} MB"
            f" ({memory / max(1, fields):.0f} B per field)"
        )
    finally:
        for prefix in prefixes.values():
            for key in sync.scan_iter(match=f"{prefix}:*", count=1000):
                sync.delete(key)
        await client.aclose()


def main() -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    try:
        asyncio.run(run(args.visitors, args.seed))
    except redis.ConnectionError as exc:
        print(f"Redis not reachable ({exc}); start the local stack with ./run up")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
