"""Generated page views through Kafka, the Faust worker, Redis, the exporter and Prometheus.

The oracle is the generator's own ground truth; answers are read back with PromQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from loadtest.generator import KNOWN_CHANNELS, generate
from tests.integration.conftest import Pipeline
from tests.integration.kpi_compare import (
    business_days,
    daily_traffic_problems,
    hll_tolerance,
    start_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.clock]


def test_page_views_reach_prometheus_exactly(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = pipeline.clock.now_ms()
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

    scrape = pipeline.wait_scraped(produced.last_offsets)
    prom = pipeline.stack.prometheus()

    def by_channel(metric: str, window: str) -> dict[str, float]:
        samples = prom.query(f'{metric}{{window="{window}"}}', scrape.real_s)
        got = {s.labels["channel"]: s.value for s in samples}
        return {c: got.get(c, 0.0) for c in {*KNOWN_CHANNELS, *got}}

    # The 20 minutes of traffic fall in today and, when the scrape is soon after midnight,
    # yesterday: both windows are checked, and together they hold every page view.
    assert daily_traffic_problems(prom, scrape.real_s, scrape.at, truth) == []
    days = business_days(scrape.at).values()
    assert sum(truth.pv("d", day) for day in days) == 40_000

    hour = start_of("h", scrape.at)
    pv_hour = by_channel("shop_page_views_by_channel", "hour")
    assert pv_hour == {c: float(truth.pv("h", hour, c)) for c in KNOWN_CHANNELS}

    minute = start_of("m", scrape.at)
    last_30 = [minute - 60 * back for back in range(30)]
    pv_30m = sum(by_channel("shop_page_views_by_channel", "30m").values())
    assert pv_30m == sum(truth.pv("m", m) for m in last_30)

    day = start_of("d", scrape.at)
    uv_all = {
        s.labels["window"]: s.value for s in prom.query("shop_unique_visitors", scrape.real_s)
    }
    exact_30m = truth.uv_over(last_30)
    assert abs(uv_all.get("30m", 0.0) - exact_30m) <= hll_tolerance(exact_30m) * exact_30m
    day_or_yesterday = max(days, key=lambda d: truth.uv("d", d))
    exact = truth.uv("d", day_or_yesterday)
    window = "day" if day_or_yesterday == day else "yesterday"
    measure(
        f"integration: UV {window} error vs ground truth", f"{(uv_all[window] / exact - 1):+.2%}"
    )

    rejected = {
        s.labels["reason"]: s.value
        for s in prom.query(
            f'shop_events_rejected_total{{topic="{pipeline.topic}"}}', scrape.real_s
        )
    }
    assert rejected == {reason: float(n) for reason, n in truth.rejected.items()}
    consumed = prom.query(f'shop_events_consumed_total{{topic="{pipeline.topic}"}}', scrape.real_s)
    assert consumed[0].value == len(generated.messages)
