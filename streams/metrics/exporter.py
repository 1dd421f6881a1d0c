"""Stateless Prometheus exporter: a collector that reads Redis at every scrape.

Windows are relative to the scrape's wall clock in the business time zone:
``minute``, ``hour``, ``day``, ``week``, ``month`` are the current buckets ("so
far"), ``last_minute``, ``yesterday``, ``last_week``, ``last_month`` the complete
previous ones (``last_minute`` gives per-minute charts one complete value per minute),
and ``5m``/``30m`` the current minute plus the 4 or 29 before it. Nothing is
cached between scrapes; if Redis cannot be read the scrape still answers, with
``shop_exporter_redis_up 0`` and no KPI series. Metrics carry no timestamps:
history comes from Prometheus's own scrapes (or from backfill).

Label values come only from allow-lists, enums, partitions and the capped
top-N rankings, so the number of series is bounded whatever the events say.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streams.common.keys import (
    ANY,
    DERIVED_SETS,
    HOLDING_ZSET,
    LIVE_SEPARATOR,
    OPS_CONSUMED,
    OPS_LAST_APPLY_MS,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    OPS_RETRACTIONS,
    OPS_TOO_LATE,
    REPEAT_LIFETIME_TALLY,
    REPEAT_MAX,
    RESPONSE_BINS_S,
    WAITING_ZSET,
    KeyLayout,
    Shard,
    field,
    parse_field,
)
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import RejectReason, TopicKind
from streams.kpi.catalogue import (
    COUNTERS,
    DISTINCT,
    EXIT_RANKING,
    PAGE_VIEWS_RANKING,
    RANKINGS,
    Component,
)
from streams.kpi.formulas import (
    CAMPAIGN_RATIOS,
    CHANNEL_RATIOS,
    PAGE_TYPE_RATIOS,
    RATIOS,
    WindowFigures,
    exit_rates,
    growth,
    net_gmv_cents,
    sales_completion,
)
from streams.kpi.scorecard import ITEMS as SCORE_ITEMS
from streams.kpi.scorecard import PERIODS, Targets
from streams.kpi.scorecard import score as score_card
from streams.kpi.scorecard import total as score_total

log = logging.getLogger(__name__)

_REASONS = frozenset(reason.value for reason in RejectReason)
ROLLING = {"5m": 5, "30m": 30}
CURRENT = {
    "minute": Granularity.MINUTE,
    "hour": Granularity.HOUR,
    "day": Granularity.DAY,
    "week": Granularity.WEEK,
    "month": Granularity.MONTH,
}
PREVIOUS = {
    "last_minute": Granularity.MINUTE,
    "yesterday": Granularity.DAY,
    "last_week": Granularity.WEEK,
    "last_month": Granularity.MONTH,
}
RANKED_WINDOWS = ("hour", "day", "week", "month", "yesterday")
PERIOD_WINDOWS = ("day", "week", "month", "yesterday", "last_week", "last_month")
GROWTH = {"day": "yesterday", "week": "last_week", "month": "last_month"}
PERIOD_GRANULARITY = {
    "day": Granularity.DAY,
    "week": Granularity.WEEK,
    "month": Granularity.MONTH,
    "yesterday": Granularity.DAY,
    "last_week": Granularity.WEEK,
    "last_month": Granularity.MONTH,
}
EXIT_CANDIDATES = 200
ITEM_LABEL_MAX = 128


@dataclass(frozen=True)
class Window:
    """A named window and the buckets it sums."""

    name: str
    buckets: tuple[Bucket, ...]
    distinct_buckets: tuple[Bucket, ...] = ()
    """The buckets whose distinct sets make up the window's (a week's or month's are its
    days'); the window's own buckets when empty."""


def windows_at(clock: BucketClock, now_s: float) -> list[Window]:
    """Every exported window, as buckets, at wall-clock time ``now_s``."""
    current = [(name, clock.bucket_at(g, now_s)) for name, g in CURRENT.items()]
    current += [(name, clock.previous(clock.bucket_at(g, now_s))) for name, g in PREVIOUS.items()]
    out = [Window(name, (b,), clock.distinct_parts(b)) for name, b in current]
    minute = clock.start_of(Granularity.MINUTE, now_s)
    out += [
        Window(name, tuple(Bucket(Granularity.MINUTE, minute - 60 * k) for k in range(n)))
        for name, n in ROLLING.items()
    ]
    return out


@dataclass(frozen=True)
class Labels:
    """The allow-lists that bound label values."""

    channels: tuple[str, ...]
    page_types: tuple[str, ...]
    devices: tuple[str, ...]
    campaigns: tuple[str, ...]

    def values(self, dimension: str) -> tuple[str, ...]:
        """Allowed values of a dimension."""
        return {
            "channel": self.channels,
            "page_type": self.page_types,
            "device": self.devices,
            "campaign": self.campaigns,
        }[dimension]


class KpiCollector(Collector):
    """Yields fresh metric families from Redis on every ``collect()``."""

    def __init__(
        self,
        client: redis.Redis,
        layout: KeyLayout,
        clock: BucketClock,
        labels: Labels,
        topic_kinds: Mapping[str, TopicKind],
        top_n: int = 20,
        exit_min_views: int = 20,
        agent_cap: int = 5,
        gmv_targets: Mapping[Granularity, float] | None = None,
        scorecard: Mapping[str, Targets] | None = None,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.layout = layout
        self.clock = clock
        self.labels = labels
        self.topic_kinds = dict(topic_kinds)
        self.top_n = top_n
        self.exit_min_views = exit_min_views
        self.agent_cap = agent_cap
        self.gmv_targets = {g: t for g, t in (gmv_targets or {}).items() if t > 0}
        self.scorecard = dict(scorecard or {period: Targets() for period in PERIODS})
        self.now_s = now_s
        self.only_windows: frozenset[str] | None = None
        """Backfill sets this: only these windows, and only the window-bound KPI families."""

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not call ``collect()`` at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read Redis (a few pipelined round trips) and yield every family."""
        started = time.perf_counter()
        up = GaugeMetricFamily("shop_exporter_redis_up", "1 if Redis answered this scrape.")
        try:
            families = _Scrape(self, self.now_s()).run()
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


class _Scrape:
    """One scrape: plan the reads, run them, build the families."""

    def __init__(self, collector: KpiCollector, now: float) -> None:
        self.c = collector
        self.now = now
        self.layout = collector.layout
        self.windows = [
            w
            for w in windows_at(collector.clock, now)
            if collector.only_windows is None or w.name in collector.only_windows
        ]

    def _shards(self) -> list[Shard]:
        raw = self.c.client.smembers(self.layout.shards())
        shards = []
        for item in raw:
            text = item.decode() if isinstance(item, bytes) else str(item)
            shard = Shard.parse(text)
            if shard.topic.split("@", 1)[0] in self.c.topic_kinds:
                shards.append(shard)
        return sorted(shards)

    def _distinct_names(self, window: Window) -> list[str]:
        names = []
        for comp in DISTINCT:
            if window.name in ROLLING and comp.name != "uv":
                continue
            names.append(field(comp.name, ANY, ANY))
            for dim in comp.dims:
                names += [field(comp.name, dim, v) for v in self.c.labels.values(dim)]
        return names

    def run(self) -> list[Metric]:
        shards = self._shards()
        kinds = self.c.topic_kinds
        counted = [s for s in shards]
        visitors = [
            s for s in shards if kinds[_base(s.topic)] in (TopicKind.CLICKSTREAM, TopicKind.ORDERS)
        ]
        chats = [s for s in shards if kinds[_base(s.topic)] is TopicKind.CHAT]
        pipe = self.c.client.pipeline(transaction=False)
        replies: list[Callable[[object], None]] = []

        def read(
            command: Callable[..., object], *args: object, into: Callable[[object], None]
        ) -> None:
            command(*args)
            replies.append(into)

        ops = _Ops()
        # Offsets first: Redis runs the pipeline in order while the worker keeps
        # applying, so every figure read after them includes at least these offsets.
        for shard in shards:
            read(pipe.get, self.layout.watermark(shard), into=partial(ops.watermark, shard))
            read(pipe.get, self.layout.applied(shard), into=partial(ops.applied, shard))
            read(pipe.hgetall, self.layout.ops(shard), into=partial(ops.counters, shard))
        counters: dict[Bucket, Counter[str]] = defaultdict(Counter)
        all_buckets = sorted({b for w in self.windows for b in w.buckets})
        for shard in counted:
            for bucket in all_buckets:
                read(
                    pipe.hgetall,
                    self.layout.counters(shard, bucket),
                    into=partial(_add_hash, counters[bucket]),
                )
        distinct: dict[str, dict[str, int]] = defaultdict(dict)
        for window in self.windows:
            for name in self._distinct_names(window):
                derived = window.distinct_buckets and parse_field(name)[0] in DERIVED_SETS
                parts = window.distinct_buckets if derived else window.buckets
                keys = [self.layout.distinct(s, b, name) for s in visitors for b in parts]
                if keys:
                    read(
                        pipe.pfcount,
                        *keys,
                        into=partial(_set_int, distinct[window.name], name),
                    )
        rankings: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        history = self.c.only_windows is not None
        ranked = [] if history else [w for w in self.windows if w.name in RANKED_WINDOWS]
        if history:
            chats, live_visitors = [], []
        else:
            live_visitors = visitors
        for window in ranked:
            for comp in (*RANKINGS,):
                for shard in visitors:
                    key = self.layout.ranking(shard, window.buckets[0], comp.name)
                    size = EXIT_CANDIDATES if comp.name == PAGE_VIEWS_RANKING else 3 * self.c.top_n
                    read(
                        pipe.zrevrange,
                        key,
                        0,
                        size - 1,
                        True,
                        into=partial(_add_zset, rankings[(window.name, comp.name)]),
                    )
        waits: list[str] = []
        holds: list[str] = []
        # Only conversations alive now (ending after now): replayed history never is.
        alive = f"({int(self.now * 1000)}"
        repeat_lifetime: Counter[str] = Counter()
        for shard in chats:
            read(
                pipe.zrangebyscore,
                self.layout.live_set(shard, WAITING_ZSET),
                alive,
                "+inf",
                into=partial(_extend_members, waits),
            )
            read(
                pipe.zrangebyscore,
                self.layout.live_set(shard, HOLDING_ZSET),
                alive,
                "+inf",
                into=partial(_extend_members, holds),
            )
        for shard in live_visitors:
            read(
                pipe.hgetall,
                self.layout.tally(shard, REPEAT_LIFETIME_TALLY),
                into=partial(_add_hash, repeat_lifetime),
            )
        for handle, reply in zip(replies, pipe.execute(), strict=True):
            handle(reply)

        rankings, exits = self._exact_rankings(visitors, ranked, rankings)
        figures = {
            w.name: WindowFigures(
                sum((counters[b] for b in w.buckets), Counter()), distinct.get(w.name, {})
            )
            for w in self.windows
        }
        families = self._kpi_families(figures)
        if history:
            return families
        families += self._ranking_families(rankings, exits)
        families += self._live_families(waits, holds, repeat_lifetime)
        families += ops.families(self.now)
        return families

    def _exact_rankings(
        self,
        shards: Sequence[Shard],
        ranked: Sequence[Window],
        candidates: Mapping[tuple[str, str], Counter[str]],
    ) -> tuple[dict[tuple[str, str], Counter[str]], dict[str, list[tuple[str, float, int]]]]:
        """Exact scores of every candidate (any shard's top), summed over all shards.

        A shard's top list alone would miss an item's score on shards where it
        ranks lower, so each candidate is looked up on every shard (ZMSCORE).
        Exit counts are looked up for the page-view candidates.
        """
        pipe = self.c.client.pipeline(transaction=False)
        plan: list[tuple[tuple[str, str], list[str]]] = []
        by_name = {w.name: w for w in ranked}
        for (window_name, name), scores in candidates.items():
            items = sorted(scores)
            if not items:
                continue
            bucket = by_name[window_name].buckets[0]
            lookups = [name] + ([EXIT_RANKING] if name == PAGE_VIEWS_RANKING else [])
            for lookup in lookups:
                for shard in shards:
                    pipe.zmscore(self.layout.ranking(shard, bucket, lookup), items)
                    plan.append(((window_name, lookup), items))
        exact: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for key, scores in zip(plan, pipe.execute() if plan else [], strict=True):
            (window_name, lookup), items = key
            for item, score in zip(items, scores, strict=True):
                if score is not None:
                    exact[(window_name, lookup)][item] += int(float(score))
        exits = {}
        for window in ranked:
            views = exact.get((window.name, PAGE_VIEWS_RANKING), Counter())
            gone = exact.get((window.name, EXIT_RANKING), Counter())
            top = exit_rates(views, gone, self.c.exit_min_views, self.c.top_n)
            exits[window.name] = [(page, rate, views[page]) for page, rate in top]
        return exact, exits

    def _kpi_families(self, figures: Mapping[str, WindowFigures]) -> list[Metric]:
        families: list[Metric] = []
        labels = self.c.labels
        for comp in COUNTERS:
            families += self._component_families(
                comp, figures, lambda f, c, dim, value: f.c(c.name, dim, value) * c.scale
            )
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
                if current not in figures or previous not in figures:
                    continue
                change = growth(figures[current].c(component), figures[previous].c(component))
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
            target = self.c.gmv_targets.get(granularity)
            if target is not None and window in figures:
                target_f.add_metric([window], target)
                done = sales_completion(figures[window].c("gmv_cents"), target)
                if done is not None:
                    completion.add_metric([window], done)
        families += [completion, target_f]
        families += self._scorecard_families(figures)
        repeat = GaugeMetricFamily(
            "shop_repeat_buyers",
            "复购: buyers by paid orders in the window (6 = 6 or more).",
            labels=["window", "orders"],
        )
        for name in (w for w in PERIOD_WINDOWS if w in figures):
            for orders, n in figures[name].repeat_distribution().items():
                repeat.add_metric([name, _orders_label(orders)], n)
        families.append(repeat)
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
        read: Callable[[WindowFigures, Component, str, str], float | None],
    ) -> list[Metric]:
        """``shop_<metric>`` per window and ``shop_<metric>_by_<dim>`` per allowed value.

        ``read`` returns None where a figure has no data; no sample is exported then.
        """
        total = GaugeMetricFamily(f"shop_{comp.metric}", comp.help, labels=["window"])
        for name, f in figures.items():
            value = read(f, comp, "", "")
            if value is not None:
                total.add_metric([name], value)
        families: list[Metric] = [total]
        for dim in comp.dims:
            by = GaugeMetricFamily(
                f"shop_{comp.metric}_by_{dim}", f"{comp.help} Per {dim}.", labels=["window", dim]
            )
            for name, f in figures.items():
                for label in self.c.labels.values(dim):
                    value = read(f, comp, dim, label)
                    if value is not None:
                        by.add_metric([name, label], value)
            families.append(by)
        return families

    def _scorecard_families(self, figures: Mapping[str, WindowFigures]) -> list[Metric]:
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
        for item, worth, _ in SCORE_ITEMS:
            points.add_metric([item], worth)
        for period, previous in GROWTH.items():
            if period not in figures or previous not in figures:
                continue
            lines = score_card(figures[period], figures[previous], self.c.scorecard[period])
            for line in lines:
                if line.score is not None:
                    item_score.add_metric([period, line.item], line.score)
            total_f.add_metric([period], score_total(lines))
        return [item_score, total_f, points]

    def _ranking_families(
        self,
        rankings: Mapping[tuple[str, str], Counter[str]],
        exits: Mapping[str, list[tuple[str, float, int]]],
    ) -> list[Metric]:
        families: list[Metric] = []
        for comp in RANKINGS:
            family = GaugeMetricFamily(
                f"shop_{comp.metric}",
                f"{comp.help} Top {self.c.top_n}.",
                labels=["window", "rank", "item"],
            )
            for window in RANKED_WINDOWS:
                top = rankings.get((window, comp.name), Counter()).most_common(self.c.top_n)
                for rank, (item, score) in enumerate(top, 1):
                    family.add_metric(
                        [window, str(rank), item[:ITEM_LABEL_MAX]], score * comp.scale
                    )
            families.append(family)
        rate = GaugeMetricFamily(
            "shop_top_exit_pages_rate",
            f"退出率: exits / views of the top {self.c.top_n} pages by exit rate "
            f"(at least {self.c.exit_min_views} views).",
            labels=["window", "rank", "page"],
        )
        views = GaugeMetricFamily(
            "shop_top_exit_pages_views", "Views of those pages.", labels=["window", "rank", "page"]
        )
        for window, rows in exits.items():
            for rank, (page, value, n) in enumerate(rows, 1):
                rate.add_metric([window, str(rank), page[:ITEM_LABEL_MAX]], value)
                views.add_metric([window, str(rank), page[:ITEM_LABEL_MAX]], n)
        return [*families, rate, views]

    def _live_families(
        self, waits: list[str], holds: list[str], lifetime: Counter[str]
    ) -> list[Metric]:
        """Gauges of now, from the members of the live sets alive now (see WAITING_ZSET)."""
        waiting_f = GaugeMetricFamily(
            "shop_cs_waiting_customers", "Customers waiting for an agent's reply now."
        )
        waiting_f.add_metric([], len(waits))
        longest = GaugeMetricFamily(
            "shop_cs_longest_wait_seconds", "Longest current wait (0 when nobody waits)."
        )
        since = min((int(m.partition(LIVE_SEPARATOR)[0]) for m in waits), default=None)
        longest.add_metric([], 0.0 if since is None else max(0.0, self.now - since / 1000))
        agents = Counter(m.partition(LIVE_SEPARATOR)[0] for m in holds)
        open_counts = list(agents.values())
        busy = GaugeMetricFamily("shop_cs_agents_busy", "Agents holding a conversation now.")
        busy.add_metric([], len(open_counts))
        over = GaugeMetricFamily(
            "shop_cs_agents_over_cap", f"Agents holding more than {self.c.agent_cap} conversations."
        )
        over.add_metric([], sum(1 for n in open_counts if n > self.c.agent_cap))
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
                lifetime.get(field("repeat_buyers", "orders", str(orders)), 0),
            )
        return [waiting_f, longest, busy, over, top, repeat]


def _distinct_or_none(
    f: WindowFigures, comp: Component, dimension: str, value: str
) -> float | None:
    """A distinct count, or None when its HyperLogLogs were not read for the window."""
    key = field(comp.name, dimension or ANY, value or ANY)
    return float(f.distinct[key]) if key in f.distinct else None


def _base(topic: str) -> str:
    """Input topic of a shard topic (replay shards are ``<topic>@<source>``)."""
    return topic.split("@", 1)[0]


def _orders_label(orders: int) -> str:
    return f"{orders}+" if orders == REPEAT_MAX else str(orders)


class _Ops:
    """Operations metrics of the pipeline, per topic and partition."""

    def __init__(self) -> None:
        self.consumed: Counter[str] = Counter()
        self.late: Counter[str] = Counter()
        self.too_late: Counter[str] = Counter()
        self.retractions: Counter[str] = Counter()
        self.rejected: Counter[tuple[str, str]] = Counter()
        self.watermarks: dict[Shard, float] = {}
        self.offsets: dict[Shard, int] = {}
        self.last_apply: dict[Shard, float] = {}

    def watermark(self, shard: Shard, reply: object) -> None:
        if reply is not None:
            self.watermarks[shard] = int(reply) / 1000  # type: ignore[call-overload]

    def applied(self, shard: Shard, reply: object) -> None:
        if reply is not None:
            self.offsets[shard] = int(reply)  # type: ignore[call-overload]

    def counters(self, shard: Shard, reply: object) -> None:
        for name, value in _int_hash(reply).items():
            if name == OPS_CONSUMED:
                self.consumed[shard.topic] += value
            elif name == OPS_LATE:
                self.late[shard.topic] += value
            elif name == OPS_TOO_LATE:
                self.too_late[shard.topic] += value
            elif name == OPS_RETRACTIONS:
                self.retractions[shard.topic] += value
            elif name == OPS_LAST_APPLY_MS:
                self.last_apply[shard] = value / 1000
            elif name.startswith(OPS_REJECTED_PREFIX):
                reason = name.removeprefix(OPS_REJECTED_PREFIX)
                if reason in _REASONS:
                    self.rejected[(shard.topic, reason)] += value

    def families(self, now: float) -> list[Metric]:
        def per_partition(name: str, doc: str, values: Mapping[Shard, float]) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=["topic", "partition"])
            for shard, value in sorted(values.items()):
                family.add_metric([shard.topic, str(shard.partition)], value)
            return family

        consumed = CounterMetricFamily(
            "shop_events_consumed", "Events taken from Kafka and applied.", labels=["topic"]
        )
        for topic, n in sorted(self.consumed.items()):
            consumed.add_metric([topic], n)
        late = CounterMetricFamily(
            "shop_late_events", "Accepted events older than the watermark.", labels=["topic"]
        )
        for topic in sorted(set(self.consumed) | set(self.late)):
            late.add_metric([topic], self.late.get(topic, 0))
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
        for topic in sorted(set(self.consumed) | set(self.too_late) | set(self.retractions)):
            too_late.add_metric([topic], self.too_late.get(topic, 0))
            retractions.add_metric([topic], self.retractions.get(topic, 0))
        rejected = CounterMetricFamily(
            "shop_events_rejected", "Events refused, per reason.", labels=["topic", "reason"]
        )
        for (topic, reason), n in sorted(self.rejected.items()):
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
                self.watermarks,
            ),
            per_partition(
                "shop_watermark_delay_seconds",
                "Scrape time minus the newest event time seen on the partition.",
                {s: now - w for s, w in self.watermarks.items()},
            ),
            per_partition(
                "shop_applied_offset", "Last Kafka offset applied to Redis.", self.offsets
            ),
            per_partition(
                "shop_last_apply_timestamp_seconds",
                "Wall-clock time of the partition's last successful apply.",
                self.last_apply,
            ),
        ]


def _add_hash(target: Counter[str], reply: object) -> None:
    target.update(_int_hash(reply))


def _set_int(target: dict[str, int], name: str, reply: object) -> None:
    target[name] = int(reply)  # type: ignore[call-overload]


def _int_hash(reply: object) -> dict[str, int]:
    if not isinstance(reply, dict):
        return {}
    out = {}
    for k, v in reply.items():
        key = k.decode() if isinstance(k, bytes) else str(k)
        try:
            out[key] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def _zset(reply: object) -> dict[str, int]:
    """Members and (integer) scores of a WITHSCORES reply."""
    if not isinstance(reply, list):
        return {}
    return {
        (m.decode() if isinstance(m, bytes) else str(m)): int(float(score)) for m, score in reply
    }


def _add_zset(target: Counter[str], reply: object) -> None:
    target.update(_zset(reply))


def _extend_members(target: list[str], reply: object) -> None:
    if isinstance(reply, list):
        target.extend(m.decode() if isinstance(m, bytes) else str(m) for m in reply)


__all__ = ["KpiCollector", "Labels", "Window", "parse_field", "windows_at"]
