"""Compares every exported KPI with a :class:`loadtest.shop_truth.ShopTruth`.

Shared by the live end-to-end test (figures read back from Prometheus) and
the replay tests (figures read from the exporter's collector). Counts and sums
must be exact, distinct counts within 2 % (within 3 for sets under 150
members, where Redis's HyperLogLog was seen 2 off at 72), ratios within what
follows from that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from loadtest.generator import KNOWN_CHANNELS, GroundTruth
from loadtest.shop_truth import ShopTruth
from streams.common.settings import Settings
from streams.kpi.catalogue import COUNTERS, DISTINCT, RANKINGS
from streams.views.promql import PrometheusClient

Series = Mapping[tuple[str, frozenset[tuple[str, str]]], float]

ZONE = ZoneInfo("Asia/Shanghai")
DEFAULTS = Settings()
ALLOWED = {
    "channel": DEFAULTS.channels,
    "campaign": DEFAULTS.campaigns,
    "device": DEFAULTS.devices,
    "page_type": DEFAULTS.page_types,
}
MINUTE_MS = 60_000
TARGETS = {"d": 50_000.0, "w": 300_000.0, "M": 1_000_000.0}


def start_of(gran: str, epoch_s: float) -> int:
    """Bucket start by hand (datetime), independent of the service's clock."""
    t = datetime.fromtimestamp(epoch_s, ZONE).replace(second=0, microsecond=0)
    if gran == "m":
        return int(t.timestamp())
    t = t.replace(minute=0)
    if gran == "h":
        return int(t.timestamp())
    t = t.replace(hour=0)
    if gran == "w":
        t = datetime.fromordinal(t.toordinal() - t.weekday()).replace(tzinfo=ZONE)
    elif gran == "M":
        t = t.replace(day=1)
    return int(datetime(t.year, t.month, t.day, tzinfo=ZONE).timestamp())


def windows(at: float) -> dict[str, tuple[str, list[int]]]:
    """Window name -> (granularity, bucket starts) at scrape time ``at``."""
    out = {
        name: (g, [start_of(g, at)])
        for name, g in (("minute", "m"), ("hour", "h"), ("day", "d"), ("week", "w"), ("month", "M"))
    }
    for name, g in (("yesterday", "d"), ("last_week", "w"), ("last_month", "M")):
        out[name] = (g, [start_of(g, start_of(g, at) - 1)])
    minute = start_of("m", at)
    out["5m"] = ("m", [minute - 60 * k for k in range(5)])
    out["30m"] = ("m", [minute - 60 * k for k in range(30)])
    return out


def business_days(at: float) -> dict[str, int]:
    """Start of the "day" and the "yesterday" window at ``at``."""
    day = start_of("d", at)
    return {"day": day, "yesterday": start_of("d", day - 1)}


def daily_traffic_problems(
    prom: PrometheusClient, real_s: float, at: float, truth: GroundTruth
) -> list[str]:
    """Page views (exact) and UV (HyperLogLog tolerance), in all and per channel, of the "day" and
    "yesterday" windows of the scrape Prometheus stamped ``real_s``, cut at ``at`` on the
    test clock, against the generator's truth. Both windows, so that traffic from before
    midnight is checked wherever the scrape falls; a window without traffic may export
    nothing or zeros."""
    problems = []
    for window, start in business_days(at).items():
        samples = prom.query(f'shop_page_views_by_channel{{window="{window}"}}', real_s)
        pv = {s.labels["channel"]: s.value for s in samples}
        want = {c: float(truth.pv("d", start, c)) for c in KNOWN_CHANNELS}
        got = {c: pv.get(c, 0.0) for c in {*want, *pv}}
        if got != want:
            problems.append(f"page views {window}: got {pv}, expected {want}")
        total = prom.query(f'shop_unique_visitors{{window="{window}"}}', real_s)
        uv = {"_all": total[0].value} if total else {}
        samples = prom.query(f'shop_unique_visitors_by_channel{{window="{window}"}}', real_s)
        uv.update({s.labels["channel"]: s.value for s in samples})
        for channel in ("_all", *KNOWN_CHANNELS):
            exact = truth.uv("d", start, channel)
            value = uv.get(channel, 0.0)
            if abs(value - exact) > hll_tolerance(exact) * max(1, exact):
                problems.append(f"UV {window} {channel}: got {value}, expected {exact}")
    return problems


def hll_tolerance(exact: int) -> float:
    """Relative tolerance of a HyperLogLog count: 2 %, or 3 members for small sets."""
    return max(3.0, 0.02 * exact) / max(1.0, exact)


def scale(metric: str) -> float:
    return 0.01 if metric.endswith("_yuan") else 0.001 if "seconds" in metric else 1.0


def compare_kpis(truth: ShopTruth, series: Series, at: float) -> tuple[list[str], int]:
    """Every figure that differs from the truth at scrape time ``at``, and how many were checked."""

    def value(name: str, **labels: str) -> float | None:
        return series.get((name, frozenset(labels.items())))

    problems: list[str] = []
    checked = 0

    def check(name: str, got: float | None, expected: float, tolerance: float = 1e-9) -> None:
        nonlocal checked
        checked += 1
        if got is None:
            if expected != 0:
                problems.append(f"{name}: no sample, expected {expected}")
            return
        if abs(got - expected) > tolerance * max(1.0, abs(expected)):
            problems.append(f"{name}: got {got}, expected {expected}")

    wins = windows(at)
    # Counts and sums: exact, in every window, in total and per dimension value.
    for comp in COUNTERS:
        metric = f"shop_{comp.metric}"
        for window, (gran, starts) in wins.items():
            exact = sum(truth.counter(gran, s, comp.name) for s in starts)
            check(f"{metric}{{{window}}}", value(metric, window=window), exact * scale(metric))
            for dim in comp.dims:
                for label in ALLOWED[dim]:
                    exact = sum(truth.counter(gran, s, comp.name, dim, label) for s in starts)
                    check(
                        f"{metric}_by_{dim}{{{window},{label}}}",
                        value(f"{metric}_by_{dim}", window=window, **{dim: label}),
                        exact * scale(metric),
                    )
    # Distinct counts: within 2 % (within 3 for small sets).
    for comp in DISTINCT:
        metric = f"shop_{comp.metric}"
        for window, (gran, starts) in wins.items():
            if window in ("5m", "30m") and comp.name != "uv":
                continue
            exact = truth.distinct_over(gran, starts, comp.name)
            tolerance = hll_tolerance(exact)
            check(f"{metric}{{{window}}}", value(metric, window=window), exact, tolerance)
            for dim in comp.dims:
                for label in ALLOWED[dim]:
                    exact = truth.distinct_over(gran, starts, comp.name, dim, label)
                    tolerance = hll_tolerance(exact)
                    check(
                        f"{metric}_by_{dim}{{{window},{label}}}",
                        value(f"{metric}_by_{dim}", window=window, **{dim: label}),
                        exact,
                        tolerance,
                    )
    # Rankings: each exported item's score is exact, and nothing better was left out.
    for comp in RANKINGS:
        metric = f"shop_{comp.metric}"
        for window in ("hour", "day", "yesterday", "week", "month"):
            gran, starts = wins[window]
            scores = truth.ranking(gran, starts[0], comp.name)
            exported = {
                dict(labels)["item"]: v
                for (n, labels), v in series.items()
                if n == metric and dict(labels)["window"] == window
            }
            checked += 1
            if len(exported) != min(20, len(scores)):
                problems.append(
                    f"{metric}{{{window}}}: {len(exported)} items, expected {min(20, len(scores))}"
                )
            for item, got_score in exported.items():
                check(f"{metric}{{{window},{item}}}", got_score, scores[item] * scale(metric))
            if exported and len(scores) > 20:
                cutoff = sorted(scores.values(), reverse=True)[19] * scale(metric)
                if min(exported.values()) < cutoff - 1e-9:
                    problems.append(f"{metric}{{{window}}}: an item below the top 20")
    # Hand-computed ratios from the truth (the test's own arithmetic).
    for window in ("hour", "day", "yesterday", "week", "month", "30m"):
        gran, starts = wins[window]

        def c(
            name: str, dim: str = "", label: str = "", g: str = gran, ss: list[int] = starts
        ) -> int:
            return sum(truth.counter(g, s, name, dim, label) for s in ss)

        def d(name: str, g: str = gran, ss: list[int] = starts) -> int:
            return truth.distinct_over(g, ss, name)

        pairs = {
            "shop_bounce_rate": (c("bounces"), c("sessions_closed"), 1e-9),
            "shop_pages_per_session": (c("session_views"), c("sessions_closed"), 1e-9),
            "shop_return_rate": (c("orders_refunded"), c("orders_paid"), 1e-9),
            "shop_good_review_rate": (c("good_reviews"), c("reviews"), 1e-9),
            "shop_cs_sla_share": (c("cs_responses_within_sla"), c("cs_responses"), 1e-9),
            "shop_complaint_satisfaction": (
                c("complaints_satisfied"),
                c("complaints_resolved"),
                1e-9,
            ),
            "shop_campaign_participation": (c("pv", "page_type", "campaign"), c("pv"), 1e-9),
            "shop_pv_per_uv": (c("pv"), d("uv"), 0.03),
            "shop_order_conversion": (d("orderers"), d("uv"), 0.045),
            "shop_payment_conversion": (d("payers"), d("uv"), 0.045),
            "shop_aov_per_order_yuan": (c("gmv_cents") / 100, c("orders_paid"), 1e-9),
            "shop_aov_per_buyer_yuan": (c("gmv_cents") / 100, d("payers"), 0.03),
            "shop_cs_first_response_avg_seconds": (
                c("cs_first_response_ms") / 1000,
                c("cs_first_responses"),
                1e-9,
            ),
        }
        snapshots = c("stock_snapshots")
        if snapshots:
            average_stock = c("stock_value_cents") / snapshots * d("warehouses") / 100
            pairs["shop_stock_turnover"] = (c("cogs_cents") / 100, average_stock, 1e-9)
        if window in ("day", "week", "month", "yesterday"):
            pairs["shop_sales_completion"] = (c("gmv_cents") / 100, TARGETS[gran], 1e-9)
        if window == "30m":
            pairs = {k: v for k, v in pairs.items() if k == "shop_pv_per_uv"}
        for metric, (num, den, tol) in pairs.items():
            expected = num / den if den > 0 else None
            got = value(metric, window=window)
            checked += 1
            if expected is None:
                if got is not None:
                    problems.append(f"{metric}{{{window}}}: {got} for an undefined ratio")
            else:
                check(f"{metric}{{{window}}}", got, expected, tol)
        if gran in ("d", "w", "M"):
            dist = truth.repeat_distribution(gran, starts[0])
            for orders in range(1, 7):
                label = "6+" if orders == 6 else str(orders)
                check(
                    f"shop_repeat_buyers{{{window},{label}}}",
                    value("shop_repeat_buyers", window=window, orders=label),
                    dist.get(orders, 0),
                )
        if window != "30m":
            # The funnel's cart-to-order step: cart visitors who ordered / cart visitors,
            # from three HyperLogLog counts (inclusion-exclusion); orderers without a cart.
            carters = truth.members(gran, starts, "carters")
            orderers = truth.members(gran, starts, "orderers")
            slack = 0.03 * (len(carters) + len(orderers) + len(carters | orderers))
            rate = value("shop_funnel_order_rate", window=window)
            checked += 2
            if not carters:
                if rate is not None:
                    problems.append(f"shop_funnel_order_rate{{{window}}}: {rate} without carters")
            elif rate is None or not 0 <= rate <= 1:
                problems.append(f"shop_funnel_order_rate{{{window}}}: {rate}, not in [0, 1]")
            elif abs(rate - len(carters & orderers) / len(carters)) > slack / len(carters):
                exact = len(carters & orderers) / len(carters)
                problems.append(f"shop_funnel_order_rate{{{window}}}: {rate}, expected {exact}")
            without = value("shop_funnel_orderers_without_cart", window=window) or 0.0
            if abs(without - len(orderers - carters)) > max(1.0, slack):
                problems.append(
                    f"shop_funnel_orderers_without_cart{{{window}}}: {without},"
                    f" expected {len(orderers - carters)}"
                )
        if window in ("hour", "day", "yesterday"):
            one, more = truth.visitors_by_views(gran, starts[0])
            for views, n in (("1", one), ("2+", more)):
                check(
                    f"shop_visitors_by_page_views{{{window},{views}}}",
                    value("shop_visitors_by_page_views", window=window, page_views=views),
                    n,
                )
            live = value("shop_live_bounce_rate", window=window)
            checked += 1
            if one + more == 0:
                if live is not None:
                    problems.append(f"shop_live_bounce_rate{{{window}}}: {live} without visitors")
            else:
                check(f"shop_live_bounce_rate{{{window}}}", live, one / (one + more))
    # Exit rates of the day: views and exits by page, floor of 20 views, top 20.
    gran, starts = wins["day"]
    views = truth.ranking(gran, starts[0], "page_views")
    exits = truth.ranking(gran, starts[0], "page_exits")
    rates = sorted(((exits[p] / n, p) for p, n in views.items() if n >= 20), reverse=True)
    exported = {
        dict(labels)["page"]: v
        for (n, labels), v in series.items()
        if n == "shop_top_exit_pages_rate" and dict(labels)["window"] == "day"
    }
    assert len(exported) == min(20, len(rates))
    for page, rate in exported.items():
        check(f"exit rate {page}", rate, exits[page] / views[page])
    if len(rates) > 20:
        assert min(exported.values()) >= rates[19][0] - 1e-9
    # Customer service right now and repeat purchase over all time.
    check("waiting", value("shop_cs_waiting_customers"), len(truth.waiting_at_end()))
    check(
        "agent max",
        value("shop_cs_agent_concurrency_max"),
        max(truth.agent_open_at_end().values(), default=0),
    )
    lifetime = truth.repeat_lifetime()
    for orders in range(1, 7):
        label = "6+" if orders == 6 else str(orders)
        check(
            f"lifetime {label}",
            value("shop_repeat_buyers_lifetime", orders=label),
            lifetime.get(orders, 0),
        )
    return problems, checked


def series_of(
    samples: list[tuple[str, dict[str, str], float]],
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Index samples by name and label set (job and instance dropped)."""
    out = {}
    for name, labels, number in samples:
        kept = {k: v for k, v in labels.items() if k not in ("job", "instance", "__name__")}
        out[(name, frozenset(kept.items()))] = number
    return out
