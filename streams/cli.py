"""Command line: ``kpi worker | exporter | create-topics | watch``.

Every option comes from a ``KPI_*`` environment variable; ``kpi --help`` lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from streams.common.errors import KpiError
from streams.common.settings import Settings, describe
from streams.ingest.events import TopicKind

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpi",
        description="Live e-commerce KPIs: Kafka -> Faust -> Redis -> Prometheus.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="settings (environment variables, with defaults):\n" + describe(),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="consume Kafka topics into Redis (Faust worker)")
    sub.add_parser("exporter", help="serve /metrics for Prometheus, read from Redis at scrape time")
    topics = sub.add_parser("create-topics", help="create the Kafka topics if they are missing")
    topics.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for Kafka to answer (default 60)"
    )
    replay = sub.add_parser(
        "replay",
        help="replay event logs or a Kafka range into the same buckets (idempotent, resumable)",
        description="Replay JSON Lines files (plain or .gz; files or folders, topic from the "
        "file name: clickstream*, orders*, chat*, marketing*), REES46 CSV files, or a Kafka "
        "topic range. Running the same input again changes nothing; an interrupted replay "
        "continues where it stopped.",
    )
    replay.add_argument("paths", nargs="*", type=Path, help="files or folders")
    replay.add_argument("--rees46", action="store_true", help="inputs are REES46 CSV files")
    replay.add_argument(
        "--kind",
        choices=[k.value for k in TopicKind],
        help="topic of every input file (default: from the file name)",
    )
    replay.add_argument(
        "--source-id",
        help="identity of this input (default: from file names "
        "and sizes); the same id resumes, a new one replays again",
    )
    replay.add_argument("--kafka-topic", help="replay this topic instead of files")
    replay.add_argument("--from-offset", type=int, help="Kafka: first offset (every partition)")
    replay.add_argument("--from-time", help="Kafka: first record at or after this ISO time")
    replay.add_argument(
        "--dry-run", action="store_true", help="print a KPI summary per day, write nothing"
    )
    replay.add_argument(
        "--close-at-end",
        action="store_true",
        help="close the visits and conversations open at the files' end even if their newest "
        "event is recent (by default only when it is older than the longest timeout plus "
        "the allowed lateness: 27 h with the default settings)",
    )
    replay.add_argument(
        "--history",
        action="store_true",
        help="input older than the retentions (last year's logs): accept events of any age "
        "and keep every bucket written for its retention counted from now (minutes 2 days, "
        "hours 8, days, weeks 400, months 800 by default), so reports and backfills of "
        "those periods can read it",
    )
    replay.add_argument("--batch", type=int, default=5_000, help="records per batch")
    replay.add_argument("--rejects", type=Path, help="write every rejected line here")
    backfill = sub.add_parser(
        "backfill",
        help="write Prometheus history (OpenMetrics with timestamps, TSDB blocks) from Redis",
    )
    backfill.add_argument("--from", dest="start", required=True, help="ISO time with offset")
    backfill.add_argument("--to", dest="end", required=True, help="ISO time with offset")
    backfill.add_argument("--step", type=int, default=60, help="seconds between samples")
    backfill.add_argument("--out", type=Path, required=True, help="folder for the output")
    backfill.add_argument(
        "--metrics",
        default="",
        help="comma-separated metric names (default: every total, no splits)",
    )
    backfill.add_argument("--blocks", action="store_true", help="also run promtool")
    backfill.add_argument(
        "--into", type=Path, help="move the blocks into this Prometheus data folder"
    )
    boards = sub.add_parser("dashboards", help="Grafana dashboards")
    boards_sub = boards.add_subparsers(dest="action", required=True)
    push = boards_sub.add_parser(
        "push",
        help="create the folder and datasource and upload every dashboard to Grafana",
        description="Upload to KPI_GRAFANA_URL with the API token in KPI_GRAFANA_TOKEN "
        "(a service-account token with the Editor role, or Admin for the datasource).",
    )
    push.add_argument(
        "--prometheus-url",
        default=None,
        help="Prometheus URL as Grafana sees it (default: KPI_PROMETHEUS_URL)",
    )
    report = sub.add_parser("report", help="write the weekly operations review (Markdown, HTML)")
    report.add_argument("--week", help="ISO week such as 2026-W47 (default: the last complete one)")
    report.add_argument("--out", type=Path, default=Path("report"), help="output folder")
    docs = sub.add_parser("docs", help="regenerate docs/events.md and docs/metrics.md")
    docs.add_argument("--check", action="store_true", help="fail if the committed docs differ")
    docs.add_argument("--dir", default="docs", help="docs folder (default: docs)")
    watch = sub.add_parser("watch", help="show live KPIs in the terminal, from Prometheus")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between screens")
    watch.add_argument("--once", action="store_true", help="print one screen and exit")
    watch.add_argument(
        "--at",
        help="print the screen as Prometheus had it at this ISO time with offset "
        "(e.g. 2026-11-11T00:05:00+08:00) and exit; Prometheus holds what it scraped, "
        "and what `kpi backfill` wrote into it",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kpi`` script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except KpiError as exc:
        print(f"kpi: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _dispatch(args, settings)
    except KpiError as exc:
        print(f"kpi {args.command}: {exc}", file=sys.stderr)
        return 2


# What each command connects to, checked for TLS certificates before it starts.
_CONNECTS = {
    "worker": (True, True),
    "exporter": (False, True),
    "backfill": (False, True),
    "report": (False, True),
}


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    kafka, redis = _CONNECTS.get(args.command, (False, False))
    if args.command == "replay":
        kafka, redis = bool(args.kafka_topic), not args.dry_run
    if kafka or redis:
        from streams.worker.runtime import preflight

        preflight(settings, kafka=kafka, redis=redis, writes=args.command in ("worker", "replay"))
    if args.command in ("worker", "replay"):
        from streams.worker.runtime import tune_gc_for_batches

        tune_gc_for_batches()
    if args.command == "worker":
        return run_worker(settings)
    if args.command == "exporter":
        return run_exporter(settings)
    if args.command == "create-topics":
        from streams.ingest.topics import create_topics

        created = asyncio.run(create_topics(settings, wait_s=args.wait))
        print(f"created: {', '.join(created) or 'nothing (all topics exist)'}")
        return 0
    if args.command == "replay":
        from streams.replay.command import run_replay

        return run_replay(settings, args)
    if args.command == "backfill":
        from streams.replay.backfill_command import run_backfill

        return run_backfill(settings, args)
    if args.command == "dashboards":
        from grafana_client.client import GrafanaException

        from dashboards.push import push as push_dashboards

        try:
            report = push_dashboards(
                settings.grafana_url,
                settings.grafana_token,
                args.prometheus_url or settings.prometheus_url,
            )
        except (GrafanaException, OSError) as exc:
            print(f"kpi dashboards push: {settings.grafana_url}: {exc}", file=sys.stderr)
            return 1
        print(
            f"folder {'created' if report.folder_created else 'kept'}, "
            f"datasource {report.datasource}, dashboards: {', '.join(report.dashboards)}"
        )
        return 0
    if args.command == "report":
        import time

        from streams.views.report import (
            build,
            daily_snapshots,
            last_complete_week,
            snapshot,
            week_bounds,
            write,
        )
        from streams.worker.runtime import kpi_collector

        week = args.week or last_complete_week(time.time(), settings.business_timezone)
        try:
            start, end = week_bounds(week, settings.business_timezone)
        except ValueError as exc:
            raise KpiError(f"--week {week!r}: expected YYYY-Www ({exc})") from exc
        now = time.time()
        if end + settings.day_retention_seconds < now:
            print(
                f"kpi report: {week} ended over {settings.day_retention_seconds // 86_400} days "
                "ago (KPI_DAY_RETENTION_SECONDS): its figures are there only if "
                "`kpi replay --history` wrote them since",
                file=sys.stderr,
            )
        collector = kpi_collector(settings)
        data = build(
            snapshot(collector, min(now, end - 1)),
            week,
            settings.channels,
            previous=snapshot(collector, start - 1),
            days=daily_snapshots(collector, start, settings.business_timezone, now_s=now),
        )
        for path in write(data, args.out):
            print(path)
        return 0
    if args.command == "docs":
        from streams.views.docgen import write_or_check

        stale = write_or_check(Path(args.dir), write=not args.check)
        if stale:
            print(f"out of date (run `kpi docs`): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    if args.command == "watch":
        from streams.views.promql import PrometheusClient
        from streams.views.watch import watch

        with contextlib.suppress(KeyboardInterrupt):
            from streams.common.timebuckets import instant

            at = instant(args.at, "--at") if args.at else None
            watch(
                PrometheusClient(settings.prometheus_url),
                settings.channels,
                args.interval,
                iterations=1 if args.once or at is not None else None,
                at=at,
            )
        return 0
    raise AssertionError(args.command)


def run_worker(settings: Settings) -> int:
    """Run the Faust worker until SIGTERM or Ctrl-C."""
    import faust

    from streams.worker.app import create_app

    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
    return 0


def run_exporter(settings: Settings) -> int:
    """Serve /metrics until SIGTERM or Ctrl-C."""
    from prometheus_client import CollectorRegistry

    from streams.metrics.http_metrics import serve_configured
    from streams.worker.runtime import kpi_collector, tune_gc_for_batches

    tune_gc_for_batches()  # a scrape allocates tens of thousands of short-lived objects
    registry = CollectorRegistry()
    registry.register(kpi_collector(settings))
    server, thread = serve_configured(registry, settings, settings.exporter_port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
