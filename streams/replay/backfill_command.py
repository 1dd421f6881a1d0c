"""``kpi backfill``: history from Redis into Prometheus blocks."""

from __future__ import annotations

import argparse
import sys
import time

from streams.common.errors import KpiError
from streams.common.keys import KeyLayout
from streams.common.settings import Settings
from streams.common.timebuckets import Bucket, BucketClock, Granularity, instant
from streams.metrics.windows import Precision
from streams.replay.backfill import History, create_blocks, install_blocks, write_openmetrics
from streams.worker.runtime import family_builder, retention, store_reader, sync_redis


def history(settings: Settings, now_s: float) -> History:
    """The figures of past moments, with the buckets the store still keeps at ``now_s``.

    A bucket is kept for its retention after its end, or after the moment a history
    replay wrote it (``kpi replay --history``) if that was later. That moment is read
    back from the expiry of the bucket's day: the sink set it to the later of the two
    plus the day retention.
    """
    clock = BucketClock(settings.business_timezone)
    kept_for = retention(settings)
    client = sync_redis(settings)
    reader = store_reader(settings, client)
    layout = KeyLayout(settings.redis_prefix)
    written: dict[Bucket, float] = {}

    def kept_from(bucket: Bucket) -> float:
        day = clock.bucket_at(Granularity.DAY, bucket.start)
        if day not in written:
            written[day] = 0.0
            for shard in reader.shards():
                expiry = client.expiretime(layout.counters(shard, day))
                if isinstance(expiry, int) and expiry > 0:
                    written[day] = max(written[day], expiry - kept_for[Granularity.DAY])
        return written[day]

    def kept(bucket: Bucket) -> bool:
        end = clock.end_of(bucket)
        if end + kept_for[bucket.granularity] > now_s:
            return True
        return max(end, kept_from(bucket)) + kept_for[bucket.granularity] > now_s

    return History(reader, family_builder(settings), clock, kept)


def run_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Write the OpenMetrics file (and blocks); returns the exit code."""
    try:
        start, end = int(instant(args.start, "--from")), int(instant(args.end, "--to"))
        if end <= start or args.step <= 0:
            raise KpiError("need --from < --to and a positive --step")
        if end > time.time():
            raise KpiError("--to lies in the future; history ends now")
        wanted = {name.strip() for name in args.metrics.split(",") if name.strip()}

        def keep(name: str) -> bool:
            if wanted:
                return name in wanted
            return "_by_" not in name and not name.startswith("shop_exporter_")

        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "history.om"
        started = time.perf_counter()

        def report(done: int, total: int) -> None:
            if done == total or done % 60 == 0:
                print(f"\r{done:,}/{total:,} steps", end="", file=sys.stderr)

        samples, precisions = write_openmetrics(
            history(settings, time.time()), start, end, args.step, target, keep, report
        )
        print(
            f"\nwrote {samples:,} samples to {target} in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        for precision in (Precision.HOUR, Precision.DAY):
            if precisions[precision]:
                print(
                    f"warning: {precisions[precision]:,} step(s) count the hour and day so far "
                    f"{precision.value}",
                    file=sys.stderr,
                )
        if args.blocks or args.into:
            blocks = create_blocks(target, args.out / "blocks")
            print(f"created {len(blocks)} block(s) in {args.out / 'blocks'}", file=sys.stderr)
            if args.into:
                moved = install_blocks(blocks, args.into)
                print(
                    f"moved {len(moved)} block(s) into {args.into}; restart Prometheus "
                    "to load them",
                    file=sys.stderr,
                )
    except KpiError as exc:
        print(f"kpi backfill: {exc}", file=sys.stderr)
        return 2
    return 0
