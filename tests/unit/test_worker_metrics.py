"""The worker's own metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.common.keys import Shard
from streams.worker.worker_metrics import WorkerMetrics


def test_each_input_topics_batch_series_starts_at_zero() -> None:
    # Without a zero sample before the first batches, rate() over the batch histograms
    # misses the whole first burst (the series appears already holding it).
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, ["clicks", "orders"])
    for name in ("shop_worker_batch_records_count", "shop_worker_apply_seconds_count"):
        for topic in ("clicks", "orders"):
            assert registry.get_sample_value(name, {"topic": topic}) == 0
    metrics.observe_batch(Shard("clicks", 0), 120, 0.01)
    assert registry.get_sample_value("shop_worker_batch_records_count", {"topic": "clicks"}) == 1
    assert registry.get_sample_value("shop_worker_batch_records_sum", {"topic": "clicks"}) == 120
    assert registry.get_sample_value("shop_worker_batch_records_count", {"topic": "chat"}) is None
