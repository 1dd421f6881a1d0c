"""Every KPI, through Kafka, the worker, Redis, the exporter and Prometheus, against the
generator's own ground truth (loadtest/shop.py computes it without the service's code).

Counts and sums must be exact, distinct counts within 2 % (within 3 for sets
under 150 members, where Redis's HyperLogLog was seen 2 off at 72), ratios
within what follows from that. All windows the exporter publishes are checked, relative to
the scrape time that Prometheus recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from loadtest.shop import ShopTruth, flush_events, generate_shop
from streams.catalogue import COUNTERS, DISTINCT, RANKINGS
from streams.settings import Settings
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

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


def hll_tolerance(exact: int) -> float:
    """Relative tolerance of a HyperLogLog count: 2 %, or 3 members for small sets."""
    return max(3.0, 0.02 * exact) / max(1.0, exact)


def scale(metric: str) -> float:
    return 0.01 if metric.endswith("_yuan") else 0.001 if "seconds" in metric else 1.0


def test_every_kpi_matches_the_ground_truth(
    pipeline: Pipeline, measure: Callable[[str, str], None]
) -> None:
    now_ms = int(time.time() * 1000)
    # Traffic 75..35 minutes ago (long enough for visitors to come back after 30 idle
    # minutes), so that the flush, 31 minutes after it, is not in the future.
    start_ms = now_ms - 75 * MINUTE_MS
    traffic = generate_shop(
        seed=5, start_ms=start_ms, duration_s=40 * 60, visitors=3_000, bad_ratio=0.01
    )
    truth: ShopTruth = traffic.truth
    flush = flush_events(5, traffic.last_ms + 31 * MINUTE_MS, DEFAULTS.topic_partitions, truth)
    assert traffic.last_ms + 31 * MINUTE_MS <= now_ms

    pipeline.env.update(
        KPI_GMV_TARGET_DAY=str(TARGETS["d"]),
        KPI_GMV_TARGET_WEEK=str(TARGETS["w"]),
        KPI_GMV_TARGET_MONTH=str(TARGETS["M"]),
    )
    pipeline.create_topics()
    pipeline.start("exporter")
    pipeline.start("worker").wait_log("Worker ready")
    started = time.perf_counter()
    produced: dict[str, dict[int, int]] = {}
    total = 0
    for kind, messages in traffic.messages.items():
        produced[kind] = pipeline.produce(messages, kind=kind).last_offsets
        total += len(messages)
    flushed = pipeline.produce([(k, v) for _, k, v in flush], partitions=[p for p, _, _ in flush])
    for partition, offset in flushed.last_offsets.items():
        produced["clickstream"][partition] = max(produced["clickstream"][partition], offset)
    done = pipeline.wait_all_applied(produced)
    measure("all KPIs: messages on four topics", f"{total + len(flush):,}")
    measure(
        "all KPIs: events/s, produce start -> all applied",
        f"{(total + len(flush)) / (done - started):,.0f}",
    )

    prom = pipeline.stack.prometheus()
    want = sum(sum(o.values()) for o in produced.values())
    deadline = time.monotonic() + 60
    while True:
        got = prom.query(f'sum(shop_applied_offset{{topic=~"{pipeline.topic}.*"}})')
        if got and got[0].value == want:
            break
        assert time.monotonic() < deadline, f"Prometheus never scraped the final offsets: {got}"
        time.sleep(0.5)
    samples = prom.query('{__name__=~"shop_.+"}')
    at = max(s.value for s in prom.query("timestamp(shop_exporter_redis_up)"))
    series: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for s in samples:
        labels = {k: v for k, v in s.labels.items() if k not in ("job", "instance", "__name__")}
        series[(s.labels["__name__"], frozenset(labels.items()))] = s.value

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
    # Rejections, per topic and reason.
    for (kind, reason), n in truth.rejected.items():
        check(
            f"rejected {kind} {reason}",
            value("shop_events_rejected_total", topic=pipeline.topic_of(kind), reason=reason),
            n,
        )

    measure("all KPIs: figures compared with the ground truth", f"{checked:,}")
    if problems:
        # Diagnostics: the same figures read by an in-process collector right now.
        from prometheus_client import CollectorRegistry

        from streams.runtime import kpi_collector

        settings = Settings.from_env(
            {k: v for k, v in pipeline.env.items() if k.startswith("KPI_")}
        )
        registry = CollectorRegistry()
        registry.register(kpi_collector(settings))
        direct = {
            (s.name, s.labels.get("window")): s.value
            for f in registry.collect()
            for s in f.samples
            if s.name == "shop_page_views"
        }
        problems.insert(0, f"read now ({time.time():.0f}, scraped {at:.0f}): {direct}")
    windows_hit = sorted({p.split("{")[1].split(",")[0].rstrip("}:") for p in problems if "{" in p})
    assert problems == [], (
        f"{len(problems)} of {checked} figures differ (windows {windows_hit}):\n"
        + "\n".join(problems[:40])
    )
