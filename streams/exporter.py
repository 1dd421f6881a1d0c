"""Stateless Prometheus exporter: a collector that reads Redis at every scrape.

Windows are relative to the scrape's wall clock in the business time zone:
``minute``, ``hour`` and ``day`` are the current buckets (so ``day`` is "today
so far"), ``5m`` and ``30m`` the current minute plus the 4 or 29 before it.
Nothing is cached between scrapes; if Redis cannot be read the scrape still
answers, with ``shop_exporter_redis_up 0`` and no KPI series. Metrics carry no
timestamps: history comes from Prometheus's own scrapes (or from backfill).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.aggregators import ANY_CHANNEL
from streams.events import RejectReason
from streams.keys import (
    OPS_CONSUMED,
    OPS_LAST_APPLY_MS,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    KeyLayout,
    Shard,
)
from streams.timebuckets import Bucket, BucketClock, Granularity

log = logging.getLogger(__name__)

ROLLING_WINDOWS = {"5m": 5, "30m": 30}
_REASONS = frozenset(reason.value for reason in RejectReason)
CURRENT_WINDOWS = {"minute": Granularity.MINUTE, "hour": Granularity.HOUR, "day": Granularity.DAY}


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which reply of the pipeline feeds which series."""

    kind: str
    shard: Shard
    window: str
    channel: str = ""


class KpiCollector(Collector):
    """Yields fresh metric families from Redis on every ``collect()``."""

    def __init__(
        self,
        client: redis.Redis,
        layout: KeyLayout,
        clock: BucketClock,
        channels: tuple[str, ...],
        now_s: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.layout = layout
        self.clock = clock
        self.channels = channels
        self.now_s = now_s

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not call ``collect()`` at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read Redis once (one pipelined round trip per step) and yield every family."""
        started = time.perf_counter()
        up = GaugeMetricFamily("shop_exporter_redis_up", "1 if Redis answered this scrape.")
        try:
            families = self._read(self.now_s())
        except redis.exceptions.RedisError as exc:
            log.warning("scrape could not read Redis: %s", exc)
            families = []
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield from families
        yield up
        took = GaugeMetricFamily(
            "shop_exporter_scrape_duration_seconds", "Time this scrape spent reading Redis."
        )
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _read(self, now: float) -> list[Metric]:
        shards = sorted(
            Shard.parse(raw.decode() if isinstance(raw, bytes) else raw)
            for raw in self.client.smembers(self.layout.shards())
        )
        minute_now = self.clock.start_of(Granularity.MINUTE, now)
        pipe = self.client.pipeline(transaction=False)
        plans: list[_Plan] = []
        visitor_channels = (*self.channels, ANY_CHANNEL)
        for shard in shards:
            for window, granularity in CURRENT_WINDOWS.items():
                bucket = Bucket(granularity, self.clock.start_of(granularity, now))
                pipe.hgetall(self.layout.pageviews(shard, bucket))
                plans.append(_Plan("pv", shard, window))
                for channel in visitor_channels:
                    pipe.pfcount(self.layout.visitors(shard, bucket, channel))
                    plans.append(_Plan("uv", shard, window, channel))
            for window, minutes in ROLLING_WINDOWS.items():
                buckets = [
                    Bucket(Granularity.MINUTE, minute_now - 60 * back) for back in range(minutes)
                ]
                for bucket in buckets:
                    pipe.hgetall(self.layout.pageviews(shard, bucket))
                    plans.append(_Plan("pv", shard, window))
                for channel in visitor_channels:
                    pipe.pfcount(*[self.layout.visitors(shard, b, channel) for b in buckets])
                    plans.append(_Plan("uv", shard, window, channel))
            pipe.get(self.layout.watermark(shard))
            plans.append(_Plan("watermark", shard, ""))
            pipe.get(self.layout.applied(shard))
            plans.append(_Plan("applied", shard, ""))
            pipe.hgetall(self.layout.ops(shard))
            plans.append(_Plan("ops", shard, ""))
        replies = pipe.execute()
        return self._families(now, plans, replies)

    def _families(self, now: float, plans: list[_Plan], replies: list[object]) -> list[Metric]:
        allowed = set(self.channels)
        windows = (*CURRENT_WINDOWS, *ROLLING_WINDOWS)
        pv: dict[tuple[str, str], int] = defaultdict(int)
        uv: dict[tuple[str, str], int] = defaultdict(int)
        consumed: dict[str, int] = defaultdict(int)
        late: dict[str, int] = defaultdict(int)
        rejected: dict[tuple[str, str], int] = defaultdict(int)
        watermark = GaugeMetricFamily(
            "shop_watermark_timestamp_seconds",
            "Newest event time seen on the partition.",
            labels=["topic", "partition"],
        )
        delay = GaugeMetricFamily(
            "shop_watermark_delay_seconds",
            "Scrape time minus the newest event time seen on the partition.",
            labels=["topic", "partition"],
        )
        applied = GaugeMetricFamily(
            "shop_applied_offset",
            "Last Kafka offset applied to Redis.",
            labels=["topic", "partition"],
        )
        last_apply = GaugeMetricFamily(
            "shop_last_apply_timestamp_seconds",
            "Wall-clock time of the partition's last successful apply.",
            labels=["topic", "partition"],
        )
        for plan, reply in zip(plans, replies, strict=True):
            labels = [plan.shard.topic, str(plan.shard.partition)]
            if plan.kind == "pv":
                for field, value in _decode_hash(reply).items():
                    channel = field if field in allowed else "other"
                    pv[(plan.window, channel)] += int(value)
            elif plan.kind == "uv":
                uv[(plan.window, plan.channel)] += int(reply)  # type: ignore[call-overload]
            elif plan.kind == "watermark" and reply is not None:
                seconds = int(reply) / 1000  # type: ignore[call-overload]
                watermark.add_metric(labels, seconds)
                delay.add_metric(labels, now - seconds)
            elif plan.kind == "applied" and reply is not None:
                applied.add_metric(labels, int(reply))  # type: ignore[call-overload]
            elif plan.kind == "ops":
                for field, value in _decode_hash(reply).items():
                    if field == OPS_CONSUMED:
                        consumed[plan.shard.topic] += int(value)
                    elif field == OPS_LATE:
                        late[plan.shard.topic] += int(value)
                    elif field == OPS_LAST_APPLY_MS:
                        last_apply.add_metric(labels, int(value) / 1000)
                    elif field.startswith(OPS_REJECTED_PREFIX):
                        reason = field.removeprefix(OPS_REJECTED_PREFIX)
                        if reason in _REASONS:
                            rejected[(plan.shard.topic, reason)] += int(value)
        page_views = GaugeMetricFamily(
            "shop_page_views", "PV 浏览量: page views in the window.", labels=["window", "channel"]
        )
        visitors = GaugeMetricFamily(
            "shop_unique_visitors",
            "UV 独立访客数 of one channel in the window (HyperLogLog).",
            labels=["window", "channel"],
        )
        visitors_all = GaugeMetricFamily(
            "shop_unique_visitors_all_channels",
            "UV 独立访客数 over all channels in the window (HyperLogLog).",
            labels=["window"],
        )
        for window in windows:
            for channel in self.channels:
                page_views.add_metric([window, channel], pv[(window, channel)])
                visitors.add_metric([window, channel], uv[(window, channel)])
            visitors_all.add_metric([window], uv[(window, ANY_CHANNEL)])
        consumed_f = CounterMetricFamily(
            "shop_events_consumed", "Events taken from Kafka and applied.", labels=["topic"]
        )
        for topic, n in consumed.items():
            consumed_f.add_metric([topic], n)
        late_f = CounterMetricFamily(
            "shop_late_events", "Accepted events older than the watermark.", labels=["topic"]
        )
        for topic, n in late.items():
            late_f.add_metric([topic], n)
        rejected_f = CounterMetricFamily(
            "shop_events_rejected", "Events refused, per reason.", labels=["topic", "reason"]
        )
        for (topic, reason), n in rejected.items():
            rejected_f.add_metric([topic, reason], n)
        return [
            page_views,
            visitors,
            visitors_all,
            consumed_f,
            late_f,
            rejected_f,
            watermark,
            delay,
            applied,
            last_apply,
        ]


def _decode_hash(reply: object) -> dict[str, str]:
    if not isinstance(reply, dict):
        return {}
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in reply.items()
    }
