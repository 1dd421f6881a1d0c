"""``kpi replay``: wires sources, the processor (or a dry run) and the report."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import ExitStack
from typing import TextIO

from streams.common.errors import KpiError
from streams.common.settings import Settings, topic_kinds
from streams.common.timebuckets import instant
from streams.ingest.events import TopicKind
from streams.ingest.kafka_auth import client_kwargs
from streams.replay.dry_run import dry_run_summary
from streams.replay.kafka import KafkaRange, replay_kafka
from streams.replay.runner import (
    ProgressBar,
    ReplayDeadLetters,
    ReplayReport,
    replay,
)
from streams.replay.sources import (
    Progress,
    expand,
    jsonl_records,
    rees46_records,
    source_id,
)
from streams.store.memory_sink import MemorySink
from streams.worker.pipeline import BatchProcessor
from streams.worker.runtime import aggregator, async_redis, batch_processor, decode_limits


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Run one replay; returns the process exit code."""
    try:
        report = asyncio.run(_run(settings, args))
    except KpiError as exc:
        print(f"kpi replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to continue", file=sys.stderr)
        return 130
    rejected = sum(report.rejected.values())
    counted = report.applied - rejected  # applied records include the rejected ones
    print(
        f"{report.records:,} records in {report.seconds:.1f}s ({report.events_per_second:,.0f}/s): "
        f"{counted:,} counted, {report.skipped:,} already applied, {rejected:,} rejected",
        file=sys.stderr,
    )
    print(
        f"  of the counted, late (behind the watermark): {report.late:,}; too late for "
        f"visits and conversations: {report.too_late:,}",
        file=sys.stderr,
    )
    if report.ended_visits or report.ended_conversations:
        print(
            f"  closed at the end of the input: {report.ended_visits:,} visits, "
            f"{report.ended_conversations:,} conversations",
            file=sys.stderr,
        )
    for shard in report.left_open:
        print(
            f"  {shard}: visits and conversations left open (the input ends within the "
            "longest timeout plus the allowed lateness; --close-at-end closes them)",
            file=sys.stderr,
        )
    for reason, n in sorted(report.rejected.items()):
        print(f"  rejected {reason}: {n:,}", file=sys.stderr)
    for line in report.first_rejects:
        print(f"  {line}", file=sys.stderr)
    if report.records and counted == 0 and report.skipped == 0:
        print(f"kpi replay: {_nothing_counted(report, settings)}", file=sys.stderr)
        return 1
    return 0


def _nothing_counted(report: ReplayReport, settings: Settings) -> str:
    """One line on why a replay counted nothing, naming what to change."""
    reason, n = report.rejected.most_common(1)[0] if report.rejected else ("", 0)
    line = f"every record was rejected ({n:,} {reason or 'of them'})"
    if reason == "too_old":
        days = settings.day_retention_seconds / 86_400
        line += (
            f": their times are older than the day retention ({days:.0f} days): replay "
            "history with --history, or check that times are epoch milliseconds (the "
            "first rejections above)"
        )
    elif reason == "malformed_json" and report.rejected.get("malformed_json") == report.records:
        line += ": is the input CSV? replay REES46 CSV files with --rees46"
    return line


async def _run(settings: Settings, args: argparse.Namespace) -> ReplayReport:
    kinds = {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()}
    topics = {kind: topic for topic, kind in kinds.items()}
    report = ReplayReport()
    with ExitStack() as stack:
        rejects: TextIO | None = None
        if args.rejects:
            rejects = stack.enter_context(args.rejects.open("w", encoding="utf-8"))
        dead = ReplayDeadLetters(report, rejects)
        client = None if args.dry_run else async_redis(settings)
        # History: events of any age, each bucket kept for its retention from now.
        kept_from_s = int(time.time()) if args.history else 0
        twin = MemorySink(settings.dedupe_minutes * 60)
        processor: BatchProcessor
        if client is None:  # the same processor, against the store's in-memory twin
            processor = BatchProcessor(
                decode_limits(settings, history=kept_from_s > 0),
                aggregator(settings, kept_from_s),
                twin,
                dead,
                kinds,
                dedupe=settings.dedupe_minutes > 0,
            )
        else:
            processor = batch_processor(settings, client, dead, kept_from_s)
        try:
            if args.kafka_topic:
                if args.close_at_end:
                    print(
                        "kpi replay: --close-at-end applies to files; a Kafka range is never "
                        "closed (its topic goes on)",
                        file=sys.stderr,
                    )
                start_ms = None
                if args.from_time:
                    start_ms = int(instant(args.from_time, "--from-time") * 1000)
                progress = Progress(0)
                bar = ProgressBar(progress)
                span = KafkaRange(args.kafka_topic, args.from_offset, start_ms)
                await replay_kafka(
                    settings.kafka_bootstrap,
                    span,
                    processor,
                    report,
                    progress,
                    args.batch,
                    client_kwargs(settings),
                )
                bar.update(report.records, final=True)
            else:
                if not args.paths:
                    raise KpiError("give files or folders to replay, or --kafka-topic")
                files = expand(args.paths)
                progress = Progress(sum(f.stat().st_size for f in files))
                records = (
                    rees46_records(files, progress)
                    if args.rees46
                    else jsonl_records(files, progress, TopicKind(args.kind) if args.kind else None)
                )
                source = args.source_id or source_id(files, history=args.history)
                print(f"replaying {len(files)} file(s) as source {source}", file=sys.stderr)
                ended_before = None if args.close_at_end else processor.clock_ms()
                await replay(
                    records,
                    processor,
                    dead,
                    topics,
                    source,
                    args.batch,
                    ProgressBar(progress),
                    ended_before,
                )
        finally:
            if client is not None:
                await client.aclose()
        if client is None:
            print(dry_run_summary(twin, settings))
    return report
