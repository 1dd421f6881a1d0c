"""Scrape time of ``kpi exporter`` over a full day of generated shop traffic, side by side.

A day (24 hours ending now) of generated shop traffic on all four topics is applied to
Redis through the worker's own batch processor, four partitions per topic (partitioned
by message key, as Kafka would), with the CPU time each Redis master spent per message
(``INFO cpu``; every master of a cluster). Then this commit's ``kpi exporter`` and, with
``--previous REV``, the exporter of another commit (a temporary git worktree) read the
same keys; they are scraped in alternating rounds over HTTP, request to last byte, so
both see the same machine load. Prints series per scrape, median and p99 per contender
and the ratio of the medians. Needs the local stack (``./run up``).

    python -m loadtest.bench_scrape --visitors 20000 --scrapes 40 --previous 6591f93
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from loadtest.shop_generator import ShopTraffic, generate_shop
from loadtest.throughput.common import median, percentile
from loadtest.throughput.exporter import Exporter, fetch
from loadtest.throughput.previous import previous_checkout
from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.store.clients import is_cluster, sync_client
from streams.worker.pipeline import BatchProcessor, DeadLetterList, Record
from streams.worker.runtime import async_redis, batch_processor

PARTITIONS = 4
BATCH = 5_000


def partitioned(traffic: ShopTraffic, settings: Settings) -> dict[Shard, list[bytes]]:
    """Generated messages by the partition Kafka would give them, in order.

    ``crc32(key) % PARTITIONS`` of their topic: keyed partitioning, up to the hash.
    """
    topics = {
        "clickstream": settings.clickstream_topic,
        "orders": settings.orders_topic,
        "chat": settings.chat_topic,
        "marketing": settings.marketing_topic,
    }
    per_shard: defaultdict[Shard, list[bytes]] = defaultdict(list)
    for kind, messages in traffic.messages.items():
        for key, value in messages:
            per_shard[Shard(topics[kind], zlib.crc32(key) % PARTITIONS)].append(value)
    return per_shard


async def apply_traffic(
    processor: BatchProcessor, traffic: ShopTraffic, settings: Settings, offsets: Counter[Shard]
) -> int:
    """Apply generated traffic as the worker would take it from Kafka; messages applied.

    Each message goes to its partition (:func:`partitioned`), in batches of ``BATCH``;
    ``offsets`` holds each partition's next offset and is advanced, so traffic can be
    applied in parts.
    """
    per_shard = partitioned(traffic, settings)
    for shard, values in per_shard.items():
        for first in range(0, len(values), BATCH):
            chunk = values[first : first + BATCH]
            records = [Record(offsets[shard] + i, v) for i, v in enumerate(chunk)]
            offsets[shard] += len(chunk)
            await processor.process(shard, records)
    return sum(len(v) for v in per_shard.values())


async def apply_day(settings: Settings, visitors: int, seed: int) -> tuple[int, float]:
    """Generate and apply the day; returns the messages applied and the seconds it took."""
    now_ms = int(time.time() * 1000)
    traffic = generate_shop(seed, now_ms - 86_400_000, 86_400 - 60, visitors)
    client = async_redis(settings)
    started = time.perf_counter()
    try:
        processor = batch_processor(settings, client, DeadLetterList())
        applied = await apply_traffic(processor, traffic, settings, Counter())
    finally:
        await client.aclose()
    return applied, time.perf_counter() - started


def redis_cpu_s(client: Any) -> dict[str, float]:
    """CPU seconds (user + system) each master has used, by address."""
    if is_cluster(client):
        nodes = {f"{n.host}:{n.port}": n.redis_connection for n in client.get_primaries()}
    else:
        kwargs = client.connection_pool.connection_kwargs
        nodes = {f"{kwargs.get('host')}:{kwargs.get('port')}": client}
    out = {}
    for name, node in nodes.items():
        info = node.info("cpu")
        out[name] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return out


def main() -> int:
    """Apply the day, scrape both exporters in turns, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=40, help="per contender")
    parser.add_argument("--previous", default="", help="another commit's exporter beside it")
    args = parser.parse_args()
    prefix = f"scrape{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k.startswith("KPI_")}
    settings = Settings.from_env({**env, "KPI_REDIS_PREFIX": prefix})
    client = sync_client(settings.redis_url)
    cpu_before = redis_cpu_s(client)
    applied, seconds = asyncio.run(apply_day(settings, args.visitors, args.seed))
    cpu = {k: v - cpu_before.get(k, 0.0) for k, v in redis_cpu_s(client).items()}
    print(f"applied {applied:,} messages of one day in {seconds:.0f} s ({PARTITIONS} partitions)")
    print(f"{'Redis master':<24}{'CPU s':>8}{'µs per message':>16}")
    for node, used in sorted(cpu.items()):
        print(f"{node:<24}{used:>8.1f}{used / applied * 1e6:>16.1f}")
    if len(cpu) > 1:
        total = sum(cpu.values())
        print(f"{'all masters':<24}{total:>8.1f}{total / applied * 1e6:>16.1f}")
    timings: dict[str, list[float]] = defaultdict(list)
    series: dict[str, int] = {}
    try:
        with (
            tempfile.TemporaryDirectory() as logs,
            previous_checkout(args.previous) as checkout,
            Exporter(settings, Path(logs)) as current,
        ):
            contenders = {"this commit": current}
            other = None
            if checkout is not None:
                other = Exporter(settings, Path(logs), code=checkout.path).__enter__()
                contenders[f"previous ({checkout.label})"] = other
            try:
                for name, exporter in contenders.items():
                    body = fetch(exporter.url)  # also warms each process up
                    series[name] = sum(
                        1 for line in body.splitlines() if line and not line.startswith("#")
                    )
                for _ in range(args.scrapes):
                    for name, exporter in contenders.items():
                        began = time.perf_counter()
                        fetch(exporter.url)
                        timings[name].append((time.perf_counter() - began) * 1000)
            finally:
                if other is not None:
                    other.__exit__()
    finally:
        for key in client.scan_iter(f"{prefix}:*", count=10_000):
            client.delete(key)  # one key at a time: a cluster refuses DEL across slots
    print(f"{'exporter':<32}{'series':>8}{'scrapes':>9}{'median ms':>11}{'p99 ms':>9}")
    for name, values in timings.items():
        print(
            f"{name:<32}{series[name]:>8,}{len(values):>9}{median(values):>11.1f}"
            f"{percentile(values, 0.99):>9.1f}"
        )
    if len(timings) == 2:
        first, second = (median(v) for v in timings.values())
        print(f"{'this commit / previous (median)':<32}{'':>8}{'':>9}{first / second:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
