"""The worker's own metrics: batch sizes, apply latency, consumer lag per partition.

Served by the worker on ``KPI_WORKER_METRICS_PORT`` (Prometheus job ``kpi-worker``),
with the exporter's TLS certificate and basic-auth user when those are set; the KPI
figures themselves come from the exporter, which reads Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.metrics.http_metrics import serve_configured

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class WorkerMetrics:
    """Prometheus metrics of one worker process (its own registry)."""

    def __init__(self, registry: CollectorRegistry, topics: Iterable[str] = ()) -> None:
        """``topics``: the input topics, whose batch series start at zero (below)."""
        self.registry = registry
        self.batch_records = Histogram(
            "shop_worker_batch_records",
            "Records per partition batch.",
            ["topic"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.apply_seconds = Histogram(
            "shop_worker_apply_seconds",
            "Time to decode, aggregate and apply one partition batch.",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.healthy = Gauge(
            "shop_worker_healthy",
            "1 while the worker can apply batches; 0 while Redis or Kafka is unreachable.",
            registry=registry,
        )
        self.healthy.set(1)
        self.kafka_up = Gauge(
            "shop_worker_kafka_up",
            "1 if the worker's last Kafka probe got cluster metadata.",
            registry=registry,
        )
        self.kafka_up.set(1)
        self._redis_ok = True
        self._kafka_ok = True
        self.lag = Gauge(
            "shop_worker_consumer_lag",
            "Records in Kafka not yet processed (high water - next).",
            ["topic", "partition"],
            registry=registry,
        )
        # A labelled series exists from its first observation; one that first appears
        # holding a whole burst of batches has no increase for rate() to see. Each input
        # topic's series is therefore exported at zero from the start.
        for topic in topics:
            self.batch_records.labels(topic)
            self.apply_seconds.labels(topic)

    @classmethod
    def serve(cls, settings: Settings, topics: Iterable[str] = ()) -> WorkerMetrics:
        """Metrics on ``KPI_WORKER_METRICS_PORT``, behind the exporter's TLS and basic auth."""
        registry = CollectorRegistry()
        metrics = cls(registry, topics)
        serve_configured(registry, settings, settings.worker_metrics_port)
        return metrics

    def set_healthy(self, healthy: bool) -> None:
        """Called by the processor when Redis goes away and comes back."""
        self._redis_ok = healthy
        self._update()

    def set_kafka(self, reachable: bool) -> None:
        """Called by the worker's periodic Kafka probe."""
        self._kafka_ok = reachable
        self.kafka_up.set(1 if reachable else 0)
        self._update()

    @property
    def kafka_reachable(self) -> bool:
        """Result of the last Kafka probe."""
        return self._kafka_ok

    def _update(self) -> None:
        self.healthy.set(1 if self._redis_ok and self._kafka_ok else 0)

    def observe_batch(self, shard: Shard, records: int, seconds: float) -> None:
        """One partition batch was applied."""
        self.batch_records.labels(shard.topic).observe(records)
        self.apply_seconds.labels(shard.topic).observe(seconds)

    def observe_partition_lag(self, topic: str, partition: int, lag: int) -> None:
        """Records between a partition's last applied offset and its end."""
        self.lag.labels(topic, str(partition)).set(lag)
