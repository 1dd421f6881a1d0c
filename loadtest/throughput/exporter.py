"""The exporter side: scrape timing, series count, and the worker's totals read through it."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from loadtest.throughput.common import free_port, median, percentile
from loadtest.throughput.worker import start_kpi, stop
from streams.common.settings import Settings


def fetch(url: str, timeout_s: float = 10) -> str:
    """GET a text page."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # local URLs only
        body: bytes = response.read()
        return body.decode()


class Exporter:
    """A ``kpi exporter`` process for one run's prefix, on a free port."""

    def __init__(self, settings: Settings, logs: Path, code: Path | None = None) -> None:
        """``code``: another checkout whose exporter runs instead of this one's."""
        self.settings = settings.replace(exporter_port=free_port())
        self.url = f"http://127.0.0.1:{self.settings.exporter_port}/metrics"
        log = logs / f"{settings.redis_prefix}-exporter-{self.settings.exporter_port}.log"
        self.process = start_kpi("exporter", self.settings, log, code)

    def __enter__(self) -> Exporter:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(self.url)
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    stop([self.process])
                    raise
                time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        stop([self.process])

    @property
    def port(self) -> int:
        """Where Prometheus should scrape."""
        return self.settings.exporter_port

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of one scrape: (name, sorted labels) -> value."""
        out = {}
        for family in text_string_to_metric_families(fetch(self.url)):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


@dataclass(frozen=True)
class ScrapeTiming:
    """GET /metrics timed ``scrapes`` times."""

    series: int
    scrapes: int
    median_ms: float
    p99_ms: float


def time_scrapes(exporter: Exporter, scrapes: int) -> ScrapeTiming:
    """Time full scrapes (request to last byte); series are the non-comment lines."""
    body = fetch(exporter.url)
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    timings = []
    for _ in range(scrapes):
        started = time.perf_counter()
        fetch(exporter.url)
        timings.append((time.perf_counter() - started) * 1000)
    return ScrapeTiming(series, scrapes, median(timings), percentile(timings, 0.99))


def totals(exporter: Exporter, topic: str) -> dict[str, float]:
    """PV and UV of the last 30 minutes and events consumed on ``topic``, read through /metrics."""
    samples = exporter.samples()
    found = {"pv_30m": float("nan"), "uv_30m": float("nan"), "consumed": float("nan")}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "shop_page_views" and label.get("window") == "30m":
            found["pv_30m"] = value
        elif name == "shop_unique_visitors" and label.get("window") == "30m":
            found["uv_30m"] = value
        elif name == "shop_events_consumed_total" and label.get("topic") == topic:
            found["consumed"] = value
    return found


def consumed(exporter: Exporter, topics: Iterable[str]) -> float:
    """``shop_events_consumed_total`` summed over ``topics``, read through /metrics."""
    wanted = set(topics)
    return sum(
        value
        for (name, labels), value in exporter.samples().items()
        if name == "shop_events_consumed_total" and dict(labels).get("topic") in wanted
    )
