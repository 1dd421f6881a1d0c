"""Builds the pipeline's parts from settings; shared by the worker, replay and tests."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from streams.aggregators import AggregatorConfig, KpiAggregator
from streams.common.keys import KeyLayout
from streams.common.settings import Settings, env_name, topic_kinds
from streams.common.timebuckets import BucketClock, Granularity
from streams.common.tls import TlsFiles, client_context, probe
from streams.ingest.events import DecodeLimits, TopicKind
from streams.ingest.kafka_auth import ssl_context, tls_files
from streams.kpi.scorecard import load as load_scorecard
from streams.metrics.collector import KpiCollector
from streams.metrics.families import FamilyBuilder
from streams.store.clients import (
    AsyncClient,
    NodeRoutedReads,
    SyncClient,
    async_client,
    cluster_address,
    is_cluster,
    sync_client,
)
from streams.store.meta import check_timezone
from streams.store.reader import Labels, ReadClient, StoreReader
from streams.store.sink import RedisSink
from streams.worker.pipeline import BatchProcessor, DeadLetters

BATCH_GC_THRESHOLDS = (50_000, 20, 100)
"""Allocations between collections of the youngest generation, and the older ones' ratios."""


def tune_gc_for_batches() -> None:
    """Collect cyclic garbage less often, for the worker, replay and the exporter.

    A batch allocates millions of short-lived objects without cycles (decoded
    events, delta keys); with Python's default (a young collection every 700
    allocations, each also walking what survived) about a sixth of a replay's
    CPU time went to the collector: 39.2 against 32.9 µs per record, four
    alternating replays of each in one process (docs/benchmarks.md).
    """
    gc.set_threshold(*BATCH_GC_THRESHOLDS)


HISTORY_MAX_AGE_MS = 100 * 365 * 86_400_000
"""How old an event a history replay accepts: any the shop can have."""


def decode_limits(settings: Settings, *, history: bool = False) -> DecodeLimits:
    """Decoder bounds: allow-lists, size, future skew, the longest event-time retention.

    A history replay accepts events of any age instead.
    """
    return DecodeLimits(
        allow_lists={
            "channels": frozenset(settings.channels),
            "page_types": frozenset(settings.page_types),
            "devices": frozenset(settings.devices),
            "campaigns": frozenset(settings.campaigns),
        },
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_ms=settings.max_future_skew_seconds * 1000,
        max_age_ms=HISTORY_MAX_AGE_MS if history else settings.day_retention_seconds * 1000,
    )


def retention(settings: Settings) -> dict[Granularity, int]:
    """Seconds each bucket size is kept after it ends."""
    return {
        Granularity.MINUTE: settings.minute_retention_seconds,
        Granularity.HOUR: settings.hour_retention_seconds,
        Granularity.DAY: settings.day_retention_seconds,
        Granularity.WEEK: settings.week_retention_seconds,
        Granularity.MONTH: settings.month_retention_seconds,
    }


def aggregator(settings: Settings, kept_from_s: int = 0) -> KpiAggregator:
    """The pure aggregator configured from settings (``kept_from_s``: history replays)."""
    return KpiAggregator(
        BucketClock(settings.business_timezone),
        AggregatorConfig(
            retention_s=retention(settings),
            late_after_ms=settings.late_after_seconds * 1000,
            session_timeout_ms=settings.visit_timeout_minutes * 60_000,
            conversation_timeout_ms=settings.conversation_timeout_hours * 3_600_000,
            allowed_lateness_ms=settings.allowed_lateness_seconds * 1000,
            order_dedupe_ms=settings.order_dedupe_days * 86_400_000,
            sla_ms=settings.sla_seconds * 1000,
            kept_from_s=kept_from_s,
        ),
    )


def redis_tls_files(settings: Settings) -> TlsFiles | None:
    """The Redis client's PEM files for a TLS address (``rediss://...``), else None."""
    if not settings.redis_url.startswith("rediss"):
        return None
    return TlsFiles(
        settings.redis_tls_cafile,
        settings.redis_tls_certfile,
        settings.redis_tls_keyfile,
        env_name("redis_tls_cafile"),
        env_name("redis_tls_certfile"),
        env_name("redis_tls_keyfile"),
    )


def _redis_tls_options(settings: Settings) -> dict[str, Any]:
    files = redis_tls_files(settings)
    if files is None:
        return {}
    options: dict[str, Any] = {}
    if files.cafile:
        options["ssl_ca_certs"] = files.cafile
    if files.certfile:
        options["ssl_certfile"] = files.certfile
    if files.keyfile:
        options["ssl_keyfile"] = files.keyfile
    return options


def preflight(settings: Settings, *, kafka: bool, redis: bool, writes: bool = False) -> None:
    """Fail at start, in one line, on settings Kafka or Redis will never accept.

    Raises :class:`~streams.common.errors.SettingsError` for unreadable or mismatched
    certificate files, an untrusted server, a refused client certificate, or a TLS
    client on a plain port; and for a business time zone other than the one the data
    under the prefix was written in (recorded by the first command that ``writes``). A
    service that does not answer is not an error here: the worker waits for it as for
    any outage.
    """
    if kafka:
        context = ssl_context(settings)
        if context is not None:
            host, _, port = settings.kafka_bootstrap.split(",")[0].strip().rpartition(":")
            probe("Kafka", host, int(port), context, tls_files(settings), ping=False)
    files = redis_tls_files(settings) if redis else None
    if files is not None:
        address = cluster_address(settings.redis_url)
        first = urlsplit(address[0] if address else settings.redis_url)
        probe(
            "Redis",
            first.hostname or "127.0.0.1",
            first.port or 6379,
            client_context(files),
            files,
            ping=True,
        )
    if redis:
        client = sync_client(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=5,
            **_redis_tls_options(settings),
        )
        try:
            check_timezone(
                client,
                KeyLayout(settings.redis_prefix),
                settings.business_timezone,
                record=writes,
            )
        except (RedisError, RedisClusterException):
            pass  # not answering (or not yet a cluster): checked by the next start
        finally:
            client.close()


def async_redis(settings: Settings) -> AsyncClient:
    """Client for the worker and replay; time-outs so an outage is noticed."""
    return async_client(
        settings.redis_url,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=15,
        **_redis_tls_options(settings),
    )


def sync_redis(settings: Settings) -> SyncClient:
    """Client for the exporter; short time-outs so a scrape never hangs.

    RESP2: sorted-set replies with scores come as flat pairs, which redis-py decodes
    faster than RESP3's (it re-encodes each RESP3 score before casting it); replies
    decoded to text by hiredis, in C, rather than member by member by the reader.
    """
    return sync_client(
        settings.redis_url,
        socket_timeout=2,
        socket_connect_timeout=2,
        protocol=2,
        decode_responses=True,
        **_redis_tls_options(settings),
    )


def redis_writer(settings: Settings) -> SyncClient:
    """Blocking client for the sink's applies (run in worker threads); time-outs as above."""
    return sync_client(
        settings.redis_url,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=15,
        **_redis_tls_options(settings),
    )


def batch_processor(
    settings: Settings, client: AsyncClient, dead_letters: DeadLetters, kept_from_s: int = 0
) -> BatchProcessor:
    """Decoder, aggregator and sink wired together (the sink's writer is made here).

    ``kept_from_s`` (epoch seconds, a history replay's start): events of any age are
    accepted, and every bucket is kept for its retention counted from then.
    """
    agg = aggregator(settings, kept_from_s)
    sink = RedisSink(
        client,
        redis_writer(settings),
        KeyLayout(settings.redis_prefix),
        agg.clock,
        retention(settings),
        dedupe_horizon_s=settings.dedupe_minutes * 60,
        kept_from_s=kept_from_s,
    )
    kinds = {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()}
    return BatchProcessor(
        decode_limits(settings, history=kept_from_s > 0),
        agg,
        sink,
        dead_letters,
        kinds,
        dedupe=settings.dedupe_minutes > 0,
    )


def kpi_collector(settings: Settings, client: SyncClient | None = None) -> KpiCollector:
    """The exporter's collector, reading Redis at scrape time."""
    return KpiCollector(
        store_reader(settings, client or sync_redis(settings)),
        family_builder(settings),
        BucketClock(settings.business_timezone),
        future_s=settings.max_future_skew_seconds,
    )


def labels(settings: Settings) -> Labels:
    """The allow-lists of label values."""
    return Labels(settings.channels, settings.page_types, settings.devices, settings.campaigns)


def store_reader(settings: Settings, client: ReadClient) -> StoreReader:
    """The reader of figures from Redis (or its in-memory twin).

    A cluster's pipelines are sent one per node (:class:`~streams.store.clients.NodeRoutedReads`).
    """
    routed = NodeRoutedReads(client) if isinstance(client, RedisCluster) else client
    return StoreReader(
        routed,
        KeyLayout(settings.redis_prefix),
        labels(settings),
        {topic: TopicKind(kind) for topic, kind in topic_kinds(settings).items()},
        top_n=settings.top_n,
        exit_min_views=settings.exit_min_views,
        union_here=is_cluster(client),
    )


def family_builder(settings: Settings) -> FamilyBuilder:
    """The collector's pure half, with the configured targets and limits."""
    return FamilyBuilder(
        labels(settings),
        top_n=settings.top_n,
        exit_min_views=settings.exit_min_views,
        agent_cap=settings.agent_cap,
        scorecard=load_scorecard(
            Path(settings.scorecard_file) if settings.scorecard_file else None
        ),
        gmv_targets={
            g: target
            for g, target in (
                (Granularity.DAY, settings.gmv_target_day),
                (Granularity.WEEK, settings.gmv_target_week),
                (Granularity.MONTH, settings.gmv_target_month),
            )
            if target > 0
        },
    )
