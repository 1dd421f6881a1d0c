"""The Prometheus collector: at every scrape, read the live windows and build the families.

Each ``collect()`` asks the reader for the windows at the scrape's wall clock
(:func:`~streams.metrics.windows.windows_at`) and hands the figures to the
:class:`~streams.metrics.families.FamilyBuilder`. The one state kept between scrapes
is the figures of the closed periods (yesterday, last week, last month), read again
as soon as any shard counts a write into an ended bucket of their size. If Redis
cannot be read the scrape still answers, with ``shop_exporter_redis_up 0`` and no KPI
series. Metrics carry no timestamps: history comes from Prometheus's own scrapes (or
from backfill, which reads past moments through the reader and the families).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.common.timebuckets import BucketClock
from streams.metrics.families import FamilyBuilder
from streams.metrics.windows import RANKED_WINDOWS, windows_at
from streams.store.reader import ClosedCache, StoreFigures, StoreReader

log = logging.getLogger(__name__)


class KpiCollector(Collector):
    """Yields fresh metric families from the store on every ``collect()``."""

    def __init__(
        self,
        reader: StoreReader,
        builder: FamilyBuilder,
        clock: BucketClock,
        now_s: Callable[[], float] = time.time,
        future_s: float = 300.0,
    ) -> None:
        self.reader = reader
        self.builder = builder
        self.clock = clock
        self.now_s = now_s
        """The scrape's clock (wall-clock epoch seconds)."""
        self.future_s = future_s
        """How far ahead of a worker's clock an event may be (``KPI_MAX_FUTURE_SKEW_SECONDS``):
        days of this week and month starting later hold nothing yet and are not read."""
        self.closed = ClosedCache()
        """Yesterday, last week and last month, read again only when a write changes them."""
        self._closed_families: tuple[tuple[frozenset[str], int], list[Metric]] | None = None
        """The families of the cached windows' samples, under the cache state built from."""

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not call ``collect()`` at registration."""
        return []

    def families_at(self, moment_s: float, cached: bool = False) -> list[Metric]:
        """What a scrape at ``moment_s`` answers (raises ``redis.RedisError``).

        ``cached``: the live scrape's read, with :attr:`closed`: closed periods, sealed
        buckets' counters and unions of sealed parts may come from it, and the days
        after :attr:`future_s` are not read.
        """
        figures = self.reader.read(
            moment_s,
            windows_at(self.clock, moment_s, self.future_s if cached else None),
            ranked=RANKED_WINDOWS,
            live=True,
            ops=True,
            cache=self.closed if cached else None,
        )
        if not figures.cached:
            return self.builder.families(figures)
        # The closed windows' samples are built once per read of them, the rest each time.
        key = (figures.cached, self.closed.generation)
        if self._closed_families is None or self._closed_families[0] != key:
            closed = StoreFigures(
                moment_s,
                {name: figures.windows[name] for name in figures.cached},
                {k: v for k, v in figures.rankings.items() if k[0] in figures.cached},
                {k: v for k, v in figures.exit_pages.items() if k in figures.cached},
            )
            self._closed_families = (key, self.builder.families(closed))
        fresh = self.builder.families(figures, emit=set(figures.windows) - figures.cached)
        return _with_samples_of(fresh, self._closed_families[1])

    def collect(self) -> Iterator[Metric]:
        """Read Redis (a few pipelined round trips) and yield every family."""
        started = time.perf_counter()
        up = GaugeMetricFamily("shop_exporter_redis_up", "1 if Redis answered this scrape.")
        try:
            families = self.families_at(self.now_s(), cached=True)
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


def _with_samples_of(fresh: list[Metric], kept: list[Metric]) -> list[Metric]:
    """``fresh`` with each family of ``kept`` joined to the one of the same name.

    The fresh families take the kept samples (kept ones are never changed, so they
    serve again); a kept family with no fresh one is added as it is.
    """
    by_name = {family.name: family for family in fresh}
    out = list(fresh)
    for family in kept:
        same = by_name.get(family.name)
        if same is None:
            out.append(family)
        else:
            same.samples.extend(family.samples)
    return out
