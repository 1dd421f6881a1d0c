"""Builds the pipeline's parts from settings; shared by the worker, replay and tests."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from streams.aggregators import TrafficAggregator
from streams.events import DecodeLimits
from streams.keys import KeyLayout
from streams.pipeline import BatchProcessor, DeadLetters
from streams.settings import Settings
from streams.sink import RedisSink
from streams.timebuckets import BucketClock, Granularity


def decode_limits(settings: Settings) -> DecodeLimits:
    """Decoder bounds: allow-lists, size, future skew, and the longest retention."""
    return DecodeLimits(
        channels=frozenset(settings.channels),
        page_types=frozenset(settings.page_types),
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_ms=settings.max_future_skew_seconds * 1000,
        max_age_ms=settings.day_retention_seconds * 1000,
    )


def retention(settings: Settings) -> dict[Granularity, int]:
    """Seconds each bucket size is kept after it ends."""
    return {
        Granularity.MINUTE: settings.minute_retention_seconds,
        Granularity.HOUR: settings.hour_retention_seconds,
        Granularity.DAY: settings.day_retention_seconds,
    }


def traffic_aggregator(settings: Settings) -> TrafficAggregator:
    """The pure aggregator configured from settings."""
    return TrafficAggregator(
        BucketClock(settings.business_timezone),
        retention(settings),
        settings.late_after_seconds * 1000,
    )


def async_redis(settings: Settings) -> aioredis.Redis:
    """Client for the worker and replay; time-outs so an outage is noticed."""
    return aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=15
    )


def sync_redis(settings: Settings) -> redis.Redis:
    """Client for the exporter; short time-outs so a scrape never hangs."""
    return redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)


def batch_processor(
    settings: Settings, client: aioredis.Redis, dead_letters: DeadLetters
) -> BatchProcessor:
    """Decoder, aggregator and sink wired together."""
    aggregator = traffic_aggregator(settings)
    sink = RedisSink(client, KeyLayout(settings.redis_prefix), aggregator)
    return BatchProcessor(decode_limits(settings), aggregator, sink, dead_letters)
