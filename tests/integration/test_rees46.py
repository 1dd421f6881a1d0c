"""Import of the REES46 clickstream CSV format, against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streams.common.settings import Settings
from streams.worker.runtime import kpi_collector
from tests.integration.clock import Clock
from tests.integration.conftest import Stack, kpi, kpi_env, run_kpi
from tests.integration.kpi_compare import start_of

pytestmark = [pytest.mark.integration, pytest.mark.clock]

HEADER = (
    "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
)


def _rows(base: int) -> list[str]:
    """Eleven hand-counted rows a minute apart from ``base``, and one that is not a row."""

    def at(minute: int) -> str:
        return datetime.fromtimestamp(base + 60 * minute, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return [
        f"{at(0)},view,p1,11,electronics.phone,acme,100.00,u1,s1",
        f"{at(1)},view,p2,12,kitchen.pan,beta,50.00,u1,s1",
        f"{at(2)},cart,p1,11,electronics.phone,acme,100.00,u1,s1",
        f"{at(3)},purchase,p1,11,electronics.phone,acme,100.00,u1,s1",
        f"{at(4)},view,p1,11,electronics.phone,acme,100.00,u2,s2",
        f"{at(5)},view,p3,13,,acme,20.00,u2,s2",
        f"{at(6)},remove_from_cart,p3,13,,acme,20.00,u2,s2",
        f"{at(7)},view,p2,12,kitchen.pan,beta,50.00,u3,s3",
        f"{at(8)},purchase,p2,12,kitchen.pan,beta,50.00,u3,s3",
        f"{at(9)},purchase,p3,13,,acme,20.00,u3,s3",
        f"{at(10)},view,p3,13,,,20.00,u4,s4",
        "not,enough,columns",
    ]


def test_rees46_csv_yields_the_hand_computed_kpis(
    stack: Stack, clock: Clock, tmp_path: Path
) -> None:
    # Eleven rows a minute apart, from two hours ago, all in one business day: moved to
    # that day's start when they would straddle a midnight. The figures are read as of
    # a minute after the last row, whose "day" is then theirs.
    base = clock.now() // 60 * 60 - 2 * 3600
    if start_of("d", base) != start_of("d", base + 600):
        base = start_of("d", base + 600)

    rows = _rows(base)
    csv = tmp_path / "2019-Oct.csv"
    csv.write_text("\n".join([HEADER, *rows]) + "\n")
    env = kpi_env(stack, clock)
    stderr = run_kpi(env, "replay", "--rees46", str(csv), timeout_s=300)
    assert f"{csv}:13: malformed_json: CSV row of 3 fields, expected 9" in stderr

    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("KPI_")})
    collector = kpi_collector(settings)
    collector.now_s = lambda: base + 11 * 60
    registry = CollectorRegistry()
    registry.register(collector)
    got: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        for s in family.samples:
            if s.labels.get("window") == "day":
                got[(s.name, s.labels.get("item", ""))] = s.value
    # Views: rows 1, 2, 5, 6, 8, 11. Visitors u1..u4. Buyers u1, u3. Purchases 100 + 50 + 20.
    assert got[("shop_page_views", "")] == 6
    assert got[("shop_unique_visitors", "")] == 4
    assert got[("shop_paying_visitors", "")] == 2
    assert got[("shop_orders_paid", "")] == 3
    assert got[("shop_gmv_yuan", "")] == pytest.approx(170.0)
    assert got[("shop_payment_conversion", "")] == 0.5
    assert got[("shop_cart_visitors", "")] == 1
    assert got[("shop_aov_per_buyer_yuan", "")] == pytest.approx(85.0)
    # Brands by views: acme p1 (u1), p1 (u2), p3 (u2) = 3; beta p2 (u1, u3) = 2.
    assert got[("shop_top_brands_views", "acme")] == 3
    assert got[("shop_top_brands_views", "beta")] == 2
    assert got[("shop_top_brands_sales_yuan", "acme")] == pytest.approx(120.0)
    assert got[("shop_top_brands_sales_yuan", "beta")] == pytest.approx(50.0)
    assert got[("shop_top_products_views", "p3")] == 2
    assert got[("shop_top_categories_views", "electronics.phone")] == 2
    # p3 has no category_code: its category_id stands in (views by u2 and u4).
    assert got[("shop_top_categories_views", "13")] == 2


def test_last_years_csv_replays_with_history_and_not_without(
    stack: Stack, clock: Clock, tmp_path: Path
) -> None:
    # The public REES46 files are from October 2019: older than every retention.
    base = int(datetime(2019, 10, 1, 2, 0, tzinfo=UTC).timestamp())  # 10:00 in Shanghai
    csv = tmp_path / "2019-Oct.csv"
    csv.write_text("\n".join([HEADER, *_rows(base)[:-1]]) + "\n")
    env = kpi_env(stack, clock)
    plain = kpi(env, "replay", "--rees46", str(csv), timeout_s=300)
    assert plain.returncode == 1, plain.stderr[-2000:]
    last = plain.stderr.strip().splitlines()[-1]
    # 13 events: 6 views, 1 cart, 3 purchases as an order placed and paid (remove_from_cart
    # has no event of its own).
    assert "every record was rejected (13 too_old)" in last and "--history" in last

    run_kpi(env, "replay", "--rees46", "--history", str(csv), timeout_s=300)
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("KPI_")})
    collector = kpi_collector(settings)
    collector.now_s = lambda: base + 11 * 60
    got = {
        (s.name, s.labels.get("window")): s.value
        for family in collector.collect()
        for s in family.samples
        if not s.labels.get("item")
    }
    assert got[("shop_page_views", "day")] == 6
    assert got[("shop_unique_visitors", "day")] == 4
    assert got[("shop_orders_paid", "day")] == 3
    assert got[("shop_gmv_yuan", "day")] == 170.0
    assert got[("shop_page_views", "month")] == 6
    assert got[("shop_page_views", "hour")] == 6
    # The weekly review of that week reads it back, and says the week is past retention.
    stderr = run_kpi(env, "report", "--week", "2019-W40", "--out", str(tmp_path / "review"))
    assert "2019-W40 ended over 400 days ago" in stderr
    assert "| PV | 6 |" in (tmp_path / "review" / "report.md").read_text()
    # And Prometheus history of those minutes can be written from it.
    run_kpi(
        env,
        "backfill",
        "--from",
        "2019-10-01T10:00:00+08:00",
        "--to",
        "2019-10-01T10:20:00+08:00",
        "--metrics",
        "shop_page_views",
        "--out",
        str(tmp_path / "backfill"),
    )
    day = [
        float(line.split()[1])
        for line in (tmp_path / "backfill" / "history.om").read_text().splitlines()
        if line.startswith("shop_page_views{") and 'window="day"' in line
    ]
    assert day and max(day) == 6
    assert day[0] < 6  # the day so far at 10:00 holds the first minute's view only
