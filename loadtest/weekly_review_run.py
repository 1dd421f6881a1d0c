r"""A real run for the weekly review: two weeks of generated shop traffic, applied, reported.

Generates each day of the two ISO weeks before ``--week``'s end (the week before and
the week itself) with the shop generator, a different number of visitors per day (a
weekday pattern, weekends busier, the second week growing), applies them through the
worker's batch processor to a fresh Redis prefix (four partitions per topic, keyed as
Kafka would: ``loadtest.bench_scrape.apply_traffic``), then writes ``kpi report --week``
for that week from what was stored.
The README's picture is that report's HTML, drawn by a headless browser::

    KPI_SCORECARD_FILE=ops/scorecard.example.toml \
        python -m loadtest.weekly_review_run --week 2026-W47 --out report-run/
    chromium --headless --no-sandbox --hide-scrollbars --window-size=1200,1190 \
        --screenshot=docs/images/weekly-review.png report-run/report.html

Needs the local stack (``./run up``). The keys are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

from loadtest.bench_scrape import apply_traffic
from loadtest.shop_generator import generate_shop
from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.views.report import build, daily_snapshots, snapshot, week_bounds, write
from streams.worker.pipeline import DeadLetterList
from streams.worker.runtime import async_redis, batch_processor, kpi_collector

WEEKDAY_SHARE = (0.85, 0.8, 0.85, 0.9, 1.0, 1.3, 1.25)
"""Visitors of each weekday, Monday first, relative to the base."""


async def apply_days(settings: Settings, week_start_s: int, base: int, growth: float) -> int:
    """Generate and apply the 14 days from a week before ``week_start_s``; messages applied."""
    offsets: Counter[Shard] = Counter()
    client = async_redis(settings)
    applied = 0
    try:
        processor = batch_processor(settings, client, DeadLetterList())
        for day in range(14):
            start_s = week_start_s - 7 * 86_400 + day * 86_400
            visitors = int(base * WEEKDAY_SHARE[day % 7] * (growth if day >= 7 else 1.0))
            traffic = generate_shop(100 + day, start_s * 1000, 86_400 - 60, visitors)
            applied += await apply_traffic(processor, traffic, settings, offsets)
            print(f"day {day + 1:>2}/14: {visitors:,} visitors applied", flush=True)
    finally:
        await client.aclose()
    return applied


def main() -> int:
    """Apply two weeks, write the report of the second, print the files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--week", required=True, help="ISO week, e.g. 2026-W47 (must have ended)")
    parser.add_argument("--visitors", type=int, default=4_000, help="base visitors per day")
    parser.add_argument("--growth", type=float, default=1.12, help="second week / first")
    parser.add_argument("--out", type=Path, default=Path("report-run"))
    parser.add_argument("--keep", action="store_true", help="leave the Redis keys")
    args = parser.parse_args()
    prefix = f"review{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if k.startswith("KPI_")}
    settings = Settings.from_env({**env, "KPI_REDIS_PREFIX": prefix})
    start, end = week_bounds(args.week, settings.business_timezone)
    if end > time.time():
        parser.error(f"{args.week} has not ended yet")
    try:
        applied = asyncio.run(apply_days(settings, start, args.visitors, args.growth))
        print(f"applied {applied:,} messages under prefix {prefix}")
        collector = kpi_collector(settings)
        data = build(
            snapshot(collector, end - 1),
            args.week,
            settings.channels,
            previous=snapshot(collector, start - 1),
            days=daily_snapshots(collector, start, settings.business_timezone, now_s=time.time()),
        )
        for path in write(data, args.out):
            print(path)
    finally:
        if not args.keep:
            client = redis.Redis.from_url(settings.redis_url)
            for key in client.scan_iter(f"{prefix}:*", count=10_000):
                client.delete(key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
