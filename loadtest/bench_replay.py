"""Benchmark: replay from files into Redis, side by side with reading and decoding alone.

    KPI_REDIS_URL=redis://127.0.0.1:16379/0 python -m loadtest.bench_replay --visitors 20000

All figures come from the same run on the same files, one core (the replay is
one process; Redis runs beside it): reading and decoding alone; reading,
decoding and aggregating without Redis (what the replay's own process can do
at best); the full replay, with its CPU time; and the time Redis spent running
the applies (``INFO commandstats``), which bounds the replay however fast the
client. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import redis

from loadtest.shop_generator import generate_shop
from streams.aggregators import ShardMemory
from streams.common.settings import Settings, topic_kinds
from streams.ingest.decoder import Decoder
from streams.ingest.events import TopicKind
from streams.replay.runner import ReplayDeadLetters, ReplayReport, replay
from streams.replay.sources import Progress, expand, jsonl_records
from streams.worker.pipeline import record_seen_ids
from streams.worker.runtime import (
    aggregator,
    async_redis,
    batch_processor,
    decode_limits,
    tune_gc_for_batches,
)


def write_log(folder: Path, visitors: int, seed: int) -> int:
    """An hour of shop traffic ending two hours ago, one JSON Lines file per topic."""
    now_ms = int(time.time() * 1000)
    traffic = generate_shop(seed, now_ms - 3 * 3_600_000, 3600, visitors)
    lines = 0
    for kind, messages in traffic.messages.items():
        (folder / f"{kind}.jsonl").write_bytes(b"\n".join(v for _, v in messages) + b"\n")
        lines += len(messages)
    return lines


def read_and_decode(folder: Path, settings: Settings) -> tuple[int, float]:
    """Records per second of reading the files and decoding every line (no aggregation)."""
    files = expand([folder])
    decoder = Decoder(decode_limits(settings))
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    count = 0
    for record in jsonl_records(files, Progress(0)):
        decoder.decode(record.value, now_ms, TopicKind(record.kind))
        count += 1
    return count, time.perf_counter() - started


def read_decode_aggregate(folder: Path, settings: Settings, batch: int) -> tuple[int, float]:
    """Records per second of reading, decoding and aggregating in replay's batches, no Redis."""
    files = expand([folder])
    decoder = Decoder(decode_limits(settings))
    kpis = aggregator(settings)
    memory: defaultdict[TopicKind, ShardMemory] = defaultdict(ShardMemory)
    pending: defaultdict[TopicKind, list[bytes]] = defaultdict(list)
    now_ms = int(time.time() * 1000)

    def fold(kind: TopicKind) -> None:
        decoded = decoder.decode_all(pending.pop(kind), now_ms, kind)
        delta = kpis.aggregate(decoded, memory[kind], now_ms)
        record_seen_ids(delta, decoded)
        # read as the sink reads them: counters expanded, distinct sets and rankings grouped
        _ = delta.counters, list(delta.distinct_groups()), list(delta.ranked_groups())

    started = time.perf_counter()
    count = 0
    for record in jsonl_records(files, Progress(0)):
        values = pending[record.kind]
        values.append(record.value)
        count += 1
        if len(values) >= batch:
            fold(record.kind)
    for kind in list(pending):
        fold(kind)
    return count, time.perf_counter() - started


def script_seconds(client: redis.Redis) -> float:
    """Seconds Redis has spent running scripts (EVALSHA) since its statistics were reset."""
    stats = client.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0)) / 1e6


async def replay_into_redis(folder: Path, settings: Settings, batch: int) -> ReplayReport:
    """The full replay: read, decode, aggregate, apply to Redis."""
    files = expand([folder])
    client = async_redis(settings)
    report = ReplayReport()
    dead = ReplayDeadLetters(report)
    try:
        processor = batch_processor(settings, client, dead)
        topics = {TopicKind(kind): topic for topic, kind in topic_kinds(settings).items()}
        return await replay(
            jsonl_records(files, Progress(0)), processor, dead, topics, uuid.uuid4().hex[:12], batch
        )
    finally:
        await client.aclose()


def main() -> int:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    tune_gc_for_batches()  # as `kpi replay` runs (every row of the table runs with it)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k.startswith("KPI_")}
    settings = Settings.from_env({**env, "KPI_REDIS_PREFIX": prefix})
    client = redis.Redis.from_url(settings.redis_url)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_log(folder, args.visitors, args.seed)
        decoded, decode_s = read_and_decode(folder, settings)
        folded, fold_s = read_decode_aggregate(folder, settings, args.batch)
        scripts_before = script_seconds(client)
        cpu_before = time.process_time()
        report = asyncio.run(replay_into_redis(folder, settings, args.batch))
        replay_cpu_s = time.process_time() - cpu_before
        redis_s = script_seconds(client) - scripts_before
    for key in client.scan_iter(f"{prefix}:*", count=10_000):
        client.delete(key)
    read_rate = decoded / decode_s
    replay_rate = report.events_per_second
    rows = [
        ("read + decode (no aggregation, no Redis)", decoded, decode_s),
        ("read + decode + aggregate (no Redis)", folded, fold_s),
        ("replay into Redis (full KPI set)", report.records, report.seconds),
        ("  its process's CPU time", report.records, replay_cpu_s),
        ("  Redis running its applies", report.records, redis_s),
    ]
    print(f"{'measurement':<44}{'records':>10}{'seconds':>9}{'records/s':>11}{'µs/record':>11}")
    for name, records, seconds in rows:
        print(
            f"{name:<44}{records:>10,}{seconds:>9.2f}{records / seconds:>11,.0f}"
            f"{1e6 * seconds / records:>11.1f}"
        )
    print(f"{'replay / read+decode':<44}{'':>10}{'':>9}{replay_rate / read_rate:>11.3f}")
    print(f"(input: {lines:,} lines, batch {args.batch:,}; rates of the two indented rows are")
    print(" the bounds each side alone would allow)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
