"""Generated page views through Kafka, the Faust worker, Redis, the exporter and Prometheus.

The oracle is the generator's own ground truth; answers are read back with PromQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from loadtest.generator import KNOWN_CHANNELS, generate
from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import start_of

pytestmark = pytest.mark.integration


def test_page_views_reach_prometheus_exactly(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = int(time.time() * 1000)
    generated = generate(40_000, now_ms - 20 * 60_000, 20 * 60, seed=2, bad_ratio=0.01)
    truth = generated.truth
    pipeline.create_topics()
    pipeline.start("exporter")
    pipeline.start("worker").wait_log("Worker ready")
    started = time.perf_counter()
    produced = pipeline.produce(generated.messages)
    done = pipeline.wait_applied(produced.last_offsets)
    rate = len(generated.messages) / (done - started)
    measure("integration: events/s, produce start -> all applied in Redis", f"{rate:,.0f}")
    measure("integration: messages (valid + invalid)", f"{len(generated.messages):,}")

    scraped_at = pipeline.wait_scraped(produced.last_offsets)
    prom = pipeline.stack.prometheus()

    def by_channel(metric: str, window: str) -> dict[str, float]:
        samples = prom.query(f'{metric}{{window="{window}"}}')
        return {s.labels["channel"]: s.value for s in samples}

    day = start_of("d", scraped_at)
    if start_of("d", now_ms / 1000 - 20 * 60) != day:
        pytest.fail("generated traffic crosses the business-day boundary; rerun after 00:20 CST")
    pv_day = by_channel("shop_page_views_by_channel", "day")
    expected_pv = {c: truth.pv("d", day, c) for c in KNOWN_CHANNELS}
    assert pv_day == {c: float(n) for c, n in expected_pv.items()}
    assert sum(expected_pv.values()) == 40_000

    hour = start_of("h", scraped_at)
    pv_hour = by_channel("shop_page_views_by_channel", "hour")
    assert pv_hour == {c: float(truth.pv("h", hour, c)) for c in KNOWN_CHANNELS}

    minute = start_of("m", scraped_at)
    last_30 = [minute - 60 * back for back in range(30)]
    pv_30m = sum(by_channel("shop_page_views_by_channel", "30m").values())
    assert pv_30m == sum(truth.pv("m", m) for m in last_30)

    uv_day = by_channel("shop_unique_visitors_by_channel", "day")
    for channel in KNOWN_CHANNELS:
        exact = truth.uv("d", day, channel)
        assert abs(uv_day[channel] - exact) <= 0.02 * exact, (channel, uv_day[channel], exact)
    uv_all = {s.labels["window"]: s.value for s in prom.query("shop_unique_visitors")}
    exact_all = truth.uv("d", day)
    assert abs(uv_all["day"] - exact_all) <= 0.02 * exact_all
    exact_30m = truth.uv_over(last_30)
    assert abs(uv_all["30m"] - exact_30m) <= 0.02 * exact_30m
    measure("integration: UV day error vs ground truth", f"{(uv_all['day'] / exact_all - 1):+.2%}")

    rejected = {
        s.labels["reason"]: s.value
        for s in prom.query(f'shop_events_rejected_total{{topic="{pipeline.topic}"}}')
    }
    assert rejected == {reason: float(n) for reason, n in truth.rejected.items()}
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}')
    assert consumed[0].value == len(generated.messages)
