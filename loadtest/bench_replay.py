"""Benchmark: replay from files into Redis, side by side with reading and decoding alone.

    KPI_REDIS_URL=redis://127.0.0.1:16379/0 python -m loadtest.bench_replay --visitors 20000

Both figures come from the same run on the same files, one core (the replay is
one process; Redis runs beside it). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import redis

from loadtest.shop import generate_shop
from streams.decoder import Decoder
from streams.events import TopicKind
from streams.replay.runner import ReplayDeadLetters, ReplayReport, replay
from streams.replay.sources import Progress, expand, jsonl_records
from streams.runtime import async_redis, batch_processor, decode_limits
from streams.settings import Settings, topic_kinds


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
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k.startswith("KPI_")}
    settings = Settings.from_env({**env, "KPI_REDIS_PREFIX": prefix})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_log(folder, args.visitors, args.seed)
        decoded, decode_s = read_and_decode(folder, settings)
        report = asyncio.run(replay_into_redis(folder, settings, args.batch))
    client = redis.Redis.from_url(settings.redis_url)
    for key in client.scan_iter(f"{prefix}:*", count=10_000):
        client.delete(key)
    read_rate = decoded / decode_s
    replay_rate = report.events_per_second
    print(f"{'measurement':<40}{'records':>12}{'seconds':>10}{'records/s':>12}")
    print(
        f"{'read + decode (no aggregation, no Redis)':<40}{decoded:>12,}{decode_s:>10.2f}"
        f"{read_rate:>12,.0f}"
    )
    print(
        f"{'replay into Redis (full KPI set)':<40}{report.records:>12,}{report.seconds:>10.2f}"
        f"{replay_rate:>12,.0f}"
    )
    print(f"{'replay / read+decode':<40}{'':>12}{'':>10}{replay_rate / read_rate:>12.3f}")
    print(f"(input: {lines:,} lines, batch {args.batch:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
