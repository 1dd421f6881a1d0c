"""The collector's pure half: figures read from the store to Prometheus metric families.

:meth:`FamilyBuilder.families` takes a :class:`~streams.store.reader.StoreFigures` (read
for a moment and a set of windows) and returns the families; it reads nothing and keeps
nothing, so the live collector, the report and backfill share it. Units: amounts stored
in cents are exported in yuan, durations stored in milliseconds in seconds.

Label values come only from allow-lists, enums, partitions and the top-N rankings, so
the number of series is bounded whatever the events say; a ranked item longer than
:data:`ITEM_LABEL_MAX` characters is cut and given a hash of the whole value, so two
different long items stay two label values.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)

from streams.common.keys import (
    ANY,
    CART_OR_ORDER,
    LIVE_SEPARATOR,
    RANKING_TRIMMED,
    REPEAT_FIELD,
    REPEAT_MAX,
    RESPONSE_BINS_S,
    VIEW_DEPTH_MAX,
    Shard,
)
from streams.common.keys import (
    field as kpi_field,
)
from streams.common.timebuckets import Granularity
from streams.kpi.catalogue import COUNTERS, DISTINCT, EXIT_RANKING, RANKINGS, Component
from streams.kpi.formulas import (
    CAMPAIGN_RATIOS,
    CHANNEL_RATIOS,
    PAGE_TYPE_RATIOS,
    RATIOS,
    WindowFigures,
    exit_rates,
    growth,
    net_gmv_cents,
    orderers_without_cart,
    sales_completion,
    visitors_by_views,
)
from streams.kpi.scorecard import ITEMS as SCORE_ITEMS
from streams.kpi.scorecard import PERIODS, Targets
from streams.kpi.scorecard import score as score_card
from streams.kpi.scorecard import total as score_total
from streams.metrics.windows import (
    DEPTH_WINDOWS,
    GROWTH,
    PERIOD_GRANULARITY,
    PERIOD_WINDOWS,
    RANKED_WINDOWS,
)
from streams.store.reader import Labels, Live, Ops, StoreFigures

ITEM_LABEL_MAX = 128
"""Longest ranked item label; longer items are cut and end in ``~`` and 8 hex digits."""


def item_label(item: str) -> str:
    """A label value for a ranked item: itself, or cut with a hash of the whole item."""
    if len(item) <= ITEM_LABEL_MAX:
        return item
    digest = hashlib.blake2s(item.encode(), digest_size=4).hexdigest()
    return f"{item[: ITEM_LABEL_MAX - 9]}~{digest}"


@dataclass(frozen=True)
class FamilyBuilder:
    """What the families depend on besides the figures: allow-lists, top N, targets."""

    labels: Labels
    top_n: int = 20
    exit_min_views: int = 20
    agent_cap: int = 5
    gmv_targets: Mapping[Granularity, float] = field(default_factory=dict)
    scorecard: Mapping[str, Targets] = field(
        default_factory=lambda: {period: Targets() for period in PERIODS}
    )

    def families(self, figures: StoreFigures, emit: Collection[str] | None = None) -> list[Metric]:
        """Every family the figures hold: window KPIs; rankings, live and ops when read.

        ``emit``: the windows whose samples are wanted (all when None); the others are
        still read where a sample compares two windows (growth, the scorecard).
        """
        shown = set(figures.windows if emit is None else emit)
        out = self._kpi_families(figures.windows, shown)
        if figures.rankings or figures.exit_pages:
            out += self._ranking_families(figures, shown)
        if figures.live is not None:
            out += self._live_families(figures.live, figures.moment_s)
        if figures.ops is not None:
            out += self._ops_families(figures.ops, figures.moment_s)
        return out

    def _kpi_families(
        self, every: Mapping[str, WindowFigures], shown: Collection[str]
    ) -> list[Metric]:
        families: list[Metric] = []
        labels = self.labels
        figures = {name: f for name, f in every.items() if name in shown}
        for comp in COUNTERS:
            families += self._component_families(comp, figures, partial(_counter, comp.divisor))
        for comp in DISTINCT:
            families += self._component_families(comp, figures, _distinct_or_none)
        for metric, (doc, formula) in RATIOS.items():
            family = GaugeMetricFamily(f"shop_{metric}", doc, labels=["window"])
            for name, f in figures.items():
                result = formula(f)
                if result is not None:
                    family.add_metric([name], result)
            families.append(family)
        for dim, table in (
            ("channel", CHANNEL_RATIOS),
            ("campaign", CAMPAIGN_RATIOS),
            ("page_type", PAGE_TYPE_RATIOS),
        ):
            for metric, (doc, dim_formula) in table.items():
                family = GaugeMetricFamily(f"shop_{metric}_by_{dim}", doc, labels=["window", dim])
                for name, f in figures.items():
                    for label in labels.values(dim):
                        result = dim_formula(f, label)
                        if result is not None:
                            family.add_metric([name, label], result)
                families.append(family)
        net = GaugeMetricFamily("shop_net_gmv_yuan", "GMV minus refunds.", labels=["window"])
        for name, f in figures.items():
            net.add_metric([name], net_gmv_cents(f) / 100)
        families.append(net)
        for metric, component in (("orders_growth", "orders_paid"), ("gmv_growth", "gmv_cents")):
            family = GaugeMetricFamily(
                f"shop_{metric}",
                f"订单量增长: ({component} so far - previous period) / previous period.",
                labels=["window"],
            )
            for current, previous in GROWTH.items():
                if current not in figures or previous not in every:
                    continue
                change = growth(figures[current].c(component), every[previous].c(component))
                if change is not None:
                    family.add_metric([current], change)
            families.append(family)
        completion = GaugeMetricFamily(
            "shop_sales_completion",
            "销售额完成率: GMV / target GMV of the period.",
            labels=["window"],
        )
        target_f = GaugeMetricFamily(
            "shop_gmv_target_yuan", "Target GMV of the period.", labels=["window"]
        )
        for window, granularity in PERIOD_GRANULARITY.items():
            target = self.gmv_targets.get(granularity)
            if target is not None and window in figures:
                target_f.add_metric([window], target)
                done = sales_completion(figures[window].c("gmv_cents"), target)
                if done is not None:
                    completion.add_metric([window], done)
        families += [completion, target_f]
        families += self._scorecard_families(figures, every)
        repeat = GaugeMetricFamily(
            "shop_repeat_buyers",
            "复购: buyers by paid orders in the window (6 = 6 or more).",
            labels=["window", "orders"],
        )
        for name in (w for w in PERIOD_WINDOWS if w in figures):
            for orders, n in figures[name].repeat_distribution().items():
                repeat.add_metric([name, _orders_label(orders)], n)
        families.append(repeat)
        without_cart = GaugeMetricFamily(
            "shop_funnel_orderers_without_cart",
            "Visitors who ordered without adding to a cart in the window (carters | orderers -"
            " carters): the funnel's cart-to-order step leaves them out.",
            labels=["window"],
        )
        for name, f in figures.items():
            if f.d(CART_OR_ORDER):
                without_cart.add_metric([name], orderers_without_cart(f))
        families.append(without_cart)
        depth = GaugeMetricFamily(
            "shop_visitors_by_page_views",
            "Visitors so far in the hour or day by their page views in it (1, or 2 = two or"
            " more); the live 跳失率 is the first over both.",
            labels=["window", "page_views"],
        )
        for name in (w for w in DEPTH_WINDOWS if w in figures):
            one, more = visitors_by_views(figures[name])
            depth.add_metric([name, "1"], one)
            depth.add_metric([name, f"{VIEW_DEPTH_MAX}+"], more)
        families.append(depth)
        for metric, stored in (
            ("cs_response_seconds", "cs_response"),
            ("cs_first_response_seconds", "cs_first_response"),
        ):
            hist = GaugeHistogramMetricFamily(
                f"shop_{metric}",
                f"Distribution of {stored.replace('_', ' ')} times.",
                labels=["window"],
            )
            for name, f in figures.items():
                cumulative, buckets = 0, []
                for bound in (*(str(b) for b in RESPONSE_BINS_S), "+Inf"):
                    cumulative += f.c(f"{stored}_bin", "le", bound)
                    buckets.append((bound, float(cumulative)))
                hist.add_metric([name], buckets, gsum_value=f.c(f"{stored}_ms") / 1000)
            families.append(hist)
        return families

    def _component_families(
        self,
        comp: Component,
        figures: Mapping[str, WindowFigures],
        read: Callable[[WindowFigures, str], float | None],
    ) -> list[Metric]:
        """``shop_<metric>`` per window and ``shop_<metric>_by_<dim>`` per allowed value.

        ``read(figures, field)`` returns None where a figure has no data; no sample is
        exported then. Distinct sets' totals are stored under ``_all`` dimension values.
        """
        distinct = comp in DISTINCT
        total = GaugeMetricFamily(f"shop_{comp.metric}", comp.help, labels=["window"])
        key = kpi_field(comp.name, ANY, ANY) if distinct else kpi_field(comp.name)
        for name, f in figures.items():
            value = read(f, key)
            if value is not None:
                total.add_metric([name], value)
        families: list[Metric] = [total]
        for dim in comp.dims:
            by = GaugeMetricFamily(
                f"shop_{comp.metric}_by_{dim}", f"{comp.help} Per {dim}.", labels=["window", dim]
            )
            fields = [
                (label, kpi_field(comp.name, dim, label)) for label in self.labels.values(dim)
            ]
            for name, f in figures.items():
                for label, key in fields:
                    value = read(f, key)
                    if value is not None:
                        by.add_metric([name, label], value)
            families.append(by)
        return families

    def _scorecard_families(
        self, figures: Mapping[str, WindowFigures], every: Mapping[str, WindowFigures]
    ) -> list[Metric]:
        item_score = GaugeMetricFamily(
            "shop_scorecard_score",
            "绩效考核: score of one item (no sample: no data, counts 0).",
            labels=["period", "item"],
        )
        total_f = GaugeMetricFamily(
            "shop_scorecard_total", "绩效考核: total score out of 100.", labels=["period"]
        )
        points = GaugeMetricFamily(
            "shop_scorecard_points", "Points an item is worth.", labels=["item"]
        )
        if any(period in figures for period in GROWTH):  # once, beside the periods' scores
            for item, worth, _ in SCORE_ITEMS:
                points.add_metric([item], worth)
        for period, previous in GROWTH.items():
            if period not in figures or previous not in every:
                continue
            lines = score_card(figures[period], every[previous], self.scorecard[period])
            for line in lines:
                if line.score is not None:
                    item_score.add_metric([period, line.item], line.score)
            total_f.add_metric([period], score_total(lines))
        return [item_score, total_f, points]

    def _ranking_families(self, figures: StoreFigures, shown: Collection[str]) -> list[Metric]:
        families: list[Metric] = []
        undercount = GaugeMetricFamily(
            "shop_ranking_undercount_bound",
            "Most any ranked score can be low by: the scores the ranking lost to its cap"
            " (RANKING_CAP, PAGE_RANKING_CAP), summed over partitions; 0 means exact.",
            labels=["window", "ranking"],
        )
        for comp in RANKINGS:
            family = GaugeMetricFamily(
                f"shop_{comp.metric}",
                f"{comp.help} Top {self.top_n}.",
                labels=["window", "rank", "item"],
            )
            # the ranked windows read (every read ranked window has exit pages)
            for window in (w for w in RANKED_WINDOWS if w in figures.exit_pages and w in shown):
                scores = figures.rankings.get((window, comp.name), Counter())
                top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
                for rank, (item, score) in enumerate(top[: self.top_n], 1):
                    family.add_metric([window, str(rank), item_label(item)], score / comp.divisor)
                undercount.add_metric(
                    [window, comp.name], _trimmed(figures, window, comp.name) / comp.divisor
                )
            families.append(family)
        rate = GaugeMetricFamily(
            "shop_top_exit_pages_rate",
            f"退出率: exits / views of the top {self.top_n} pages by exit rate "
            f"(at least {self.exit_min_views} views).",
            labels=["window", "rank", "page"],
        )
        views = GaugeMetricFamily(
            "shop_top_exit_pages_views", "Views of those pages.", labels=["window", "rank", "page"]
        )
        for window, pages in ((w, p) for w, p in figures.exit_pages.items() if w in shown):
            rates = exit_rates(pages.views, pages.exits, self.exit_min_views, self.top_n)
            for rank, (page, value) in enumerate(rates, 1):
                rate.add_metric([window, str(rank), item_label(page)], value)
                views.add_metric([window, str(rank), item_label(page)], pages.views[page])
            undercount.add_metric([window, EXIT_RANKING], _trimmed(figures, window, EXIT_RANKING))
        return [*families, rate, views, undercount]

    def _live_families(self, live: Live, now: float) -> list[Metric]:
        """Gauges of the moment, from the live sets' members alive then (see WAITING_ZSET)."""
        waits, holds, lifetime = live.waits, live.holds, live.repeat_lifetime
        waiting_f = GaugeMetricFamily(
            "shop_cs_waiting_customers", "Customers waiting for an agent's reply now."
        )
        waiting_f.add_metric([], len(waits))
        longest = GaugeMetricFamily(
            "shop_cs_longest_wait_seconds", "Longest current wait (0 when nobody waits)."
        )
        since = min((int(m.partition(LIVE_SEPARATOR)[0]) for m in waits), default=None)
        longest.add_metric([], 0.0 if since is None else max(0.0, now - since / 1000))
        agents = Counter(m.partition(LIVE_SEPARATOR)[0] for m in holds)
        open_counts = list(agents.values())
        busy = GaugeMetricFamily("shop_cs_agents_busy", "Agents holding a conversation now.")
        busy.add_metric([], len(open_counts))
        over = GaugeMetricFamily(
            "shop_cs_agents_over_cap", f"Agents holding more than {self.agent_cap} conversations."
        )
        over.add_metric([], sum(1 for n in open_counts if n > self.agent_cap))
        top = GaugeMetricFamily(
            "shop_cs_agent_concurrency_max", "Most conversations one agent holds now."
        )
        top.add_metric([], max(open_counts, default=0))
        repeat = GaugeMetricFamily(
            "shop_repeat_buyers_lifetime",
            "Buyers by paid orders ever (6 = 6 or more).",
            labels=["orders"],
        )
        for orders in range(1, REPEAT_MAX + 1):
            repeat.add_metric(
                [_orders_label(orders)],
                lifetime.get(kpi_field(REPEAT_FIELD, "orders", str(orders)), 0),
            )
        return [waiting_f, longest, busy, over, top, repeat]

    def _ops_families(self, ops: Ops, now: float) -> list[Metric]:
        def per_partition(name: str, doc: str, values: Mapping[Shard, float]) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=["topic", "partition"])
            for shard, value in sorted(values.items()):
                family.add_metric([shard.topic, str(shard.partition)], value)
            return family

        consumed = CounterMetricFamily(
            "shop_events_consumed", "Events taken from Kafka and applied.", labels=["topic"]
        )
        for topic, n in sorted(ops.consumed.items()):
            consumed.add_metric([topic], n)
        late = CounterMetricFamily(
            "shop_late_events", "Accepted events older than the watermark.", labels=["topic"]
        )
        for topic in sorted(set(ops.consumed) | set(ops.late)):
            late.add_metric([topic], ops.late.get(topic, 0))
        too_late = CounterMetricFamily(
            "shop_too_late_events",
            "Events more than the allowed lateness behind the watermark: counted, but in no"
            " visit or conversation.",
            labels=["topic"],
        )
        retractions = CounterMetricFamily(
            "shop_retractions",
            "Visits and conversations whose emitted figures a late event corrected.",
            labels=["topic"],
        )
        for topic in sorted(set(ops.consumed) | set(ops.too_late) | set(ops.retractions)):
            too_late.add_metric([topic], ops.too_late.get(topic, 0))
            retractions.add_metric([topic], ops.retractions.get(topic, 0))
        rejected = CounterMetricFamily(
            "shop_events_rejected", "Events refused, per reason.", labels=["topic", "reason"]
        )
        for (topic, reason), n in sorted(ops.rejected.items()):
            rejected.add_metric([topic, reason], n)
        return [
            consumed,
            late,
            too_late,
            retractions,
            rejected,
            per_partition(
                "shop_watermark_timestamp_seconds",
                "Newest event time seen on the partition.",
                ops.watermarks,
            ),
            per_partition(
                "shop_watermark_delay_seconds",
                "Scrape time minus the newest event time seen on the partition, never below 0.",
                {s: max(0.0, now - w) for s, w in ops.watermarks.items()},
            ),
            per_partition(
                "shop_watermark_ahead_seconds",
                "How far the newest event time seen on the partition is ahead of the scrape.",
                {s: max(0.0, w - now) for s, w in ops.watermarks.items()},
            ),
            per_partition(
                "shop_applied_offset", "Last Kafka offset applied to Redis.", ops.offsets
            ),
            per_partition(
                "shop_last_apply_timestamp_seconds",
                "Wall-clock time of the partition's last successful apply.",
                ops.last_apply,
            ),
        ]


def _distinct_or_none(f: WindowFigures, key: str) -> float | None:
    """A distinct count, or None when its HyperLogLogs were not read for the window."""
    return float(f.distinct[key]) if key in f.distinct else None


def _counter(divisor: int, f: WindowFigures, key: str) -> float:
    """A counter in its exported unit (0 when never written)."""
    return f.counters.get(key, 0) / divisor


def _trimmed(figures: StoreFigures, window: str, ranking: str) -> int:
    """The scores ``ranking`` lost to its cap in ``window`` (0 when the window was not read)."""
    found = figures.windows.get(window)
    return 0 if found is None else found.c(RANKING_TRIMMED, "ranking", ranking)


def _orders_label(orders: int) -> str:
    return f"{orders}+" if orders == REPEAT_MAX else str(orders)
