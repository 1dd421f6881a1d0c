"""The fast renderer writes exactly what prometheus_client writes."""

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from streams.metrics.exposition import metrics_app, render


class Fixed:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def families() -> list[Metric]:
    pv = GaugeMetricFamily("shop_page_views", 'PV "per" window\\n', labels=["window", "channel"])
    pv.add_metric(["day", "ads"], 12)
    pv.add_metric(["5m", 'we"ird\\ch\nannel'], 0.1 + 0.2)
    pv.add_metric(["hour", "广告"], float("inf"))
    pv.add_metric(["minute", "none"], float("nan"))
    up = GaugeMetricFamily("shop_exporter_redis_up", "up", value=1)
    consumed = CounterMetricFamily("shop_events_consumed", "events", labels=["topic"], created=5.0)
    consumed.add_metric(["clicks"], 1e21, created=1700000000.5)
    consumed.add_metric(["orders"], 3)
    wait = HistogramMetricFamily("shop_cs_wait_seconds", "wait", labels=["window"])
    wait.add_metric(["day"], [("1.0", 2), ("+Inf", 5)], sum_value=7.5)
    info = InfoMetricFamily("shop_build", "build", value={"version": "1", "zone": "Asia/Shanghai"})
    stamped = GaugeMetricFamily("shop_stamped", "with a timestamp", labels=["b", "a"])
    stamped.add_metric(["2", "1"], 4, timestamp=1795745000.123)
    return [pv, up, consumed, wait, info, stamped, GaugeMetricFamily("shop_empty", "none")]


def test_render_equals_generate_latest() -> None:
    registry = CollectorRegistry()
    registry.register(Fixed(families()))  # type: ignore[arg-type]
    assert render(registry) == generate_latest(registry)


def test_the_app_answers_plain_or_gzip() -> None:
    registry = CollectorRegistry()
    registry.register(Fixed(families()))  # type: ignore[arg-type]
    app = metrics_app(registry)
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(app({}, lambda status, headers: seen.append((status, headers))))
    assert body == generate_latest(registry)
    assert (
        seen[0][0] == "200 OK"
        and ("Content-Type", "text/plain; version=0.0.4; charset=utf-8") in seen[0][1]
    )
    zipped = b"".join(
        app({"HTTP_ACCEPT_ENCODING": "gzip, deflate"}, lambda s, h: seen.append((s, h)))
    )
    assert gzip.decompress(zipped) == generate_latest(registry)
    assert ("Content-Encoding", "gzip") in seen[1][1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(), st.integers(-(10**20), 10**20)), min_size=1, max_size=20))
def test_every_value_is_written_as_generate_latest_writes_it(values: list[float]) -> None:
    gauge = GaugeMetricFamily("shop_value", "any value", labels=["i"])
    for i, value in enumerate([*values, 999_999.99, 1e6, 1_234_567.0, -5e7, 1e-05, -0.0]):
        gauge.add_metric([str(i)], value)
    registry = CollectorRegistry()
    registry.register(Fixed([gauge]))  # type: ignore[arg-type]
    assert render(registry) == generate_latest(registry)
