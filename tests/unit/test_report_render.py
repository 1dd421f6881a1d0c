"""The weekly review from hand-built snapshots: week-over-week verdicts, daily series, charts."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric

from streams.views import report
from streams.views.report import Snapshot

GREEN, RED, GREY = report.COLOURS["better"], report.COLOURS["worse"], report.COLOURS["same"]
CHANNELS = ("search", "ads")
WEEK = "2026-W13"  # Monday 23 March 2026; Europe's clocks go forward on Sunday the 29th


def put(snap: Snapshot, name: str, value: float, **labels: str) -> None:
    snap.samples[(name, frozenset(labels.items()))] = value


def histogram(snap: Snapshot, name: str, buckets: dict[str, float]) -> None:
    """Cumulative ``le`` buckets of the week window, as the gauge histogram exports them."""
    for le, count in buckets.items():
        put(snap, f"{name}_bucket", count, window="week", le=le)


def week_snapshot() -> Snapshot:
    snap = Snapshot()
    for name, value in (
        ("shop_page_views", 100),
        ("shop_unique_visitors", 50),
        ("shop_sessions", 60),
        ("shop_bounce_rate", 0.44),
        ("shop_orders_paid", 10),
        ("shop_gmv_yuan", 1243.25),
        ("shop_order_conversion", 0.2),
        ("shop_payment_conversion", 0.18),
        ("shop_return_rate", 0.05),
        ("shop_cs_response_avg_seconds", 8.0),
        ("shop_repeat_rate", 0.4),
    ):
        put(snap, name, value, window="week")
    histogram(snap, "shop_cs_response_seconds", {"5": 10, "10": 30, "15": 40, "+Inf": 40})
    histogram(snap, "shop_cs_first_response_seconds", {"5": 8, "10": 10, "+Inf": 10})
    for orders, buyers in (("1", 6), ("2", 3), ("6+", 1)):
        put(snap, "shop_repeat_buyers", buyers, window="week", orders=orders)
    for channel, pv, conversion in (("search", 70, 0.2), ("ads", 30, 0.1)):
        put(snap, "shop_page_views_by_channel", pv, window="week", channel=channel)
        put(snap, "shop_payment_conversion_by_channel", conversion, window="week", channel=channel)
    for rank, page, rate in ((1, "/checkout", 0.5), (2, "/cart", 0.25)):
        put(snap, "shop_top_exit_pages_rate", rate, window="week", rank=str(rank), page=page)
    for rank, item, views in ((1, "p-001", 40), (2, "p-002", 25)):
        put(snap, "shop_top_products_views", views, window="week", rank=str(rank), item=item)
    put(snap, "shop_scorecard_score", 5, period="week", item="teamwork")
    put(snap, "shop_scorecard_score", 6.5, period="week", item="pv")
    put(snap, "shop_scorecard_total", 72.5, period="week")
    return snap


def previous_snapshot() -> Snapshot:
    """The week before, asked at its own last second: its figures are its ``week`` window."""
    snap = Snapshot()
    for name, value in (
        ("shop_page_views", 80),
        ("shop_unique_visitors", 50),
        ("shop_sessions", 55),
        ("shop_bounce_rate", 0.40),
        ("shop_orders_paid", 8),
        ("shop_gmv_yuan", 1000),
        ("shop_order_conversion", 0.16),
        ("shop_payment_conversion", 0.18),
        ("shop_return_rate", 0.08),
        ("shop_cs_response_avg_seconds", 6.0),
    ):
        put(snap, name, value, window="week")
    histogram(snap, "shop_cs_response_seconds", {"5": 20, "10": 36, "15": 40, "+Inf": 40})
    histogram(snap, "shop_cs_first_response_seconds", {"5": 2, "10": 4, "15": 10, "+Inf": 10})
    put(snap, "shop_scorecard_total", 70, period="week")
    return snap


DAILY_VALUES = {
    "shop_page_views": ([10, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23, 24, 25, None]),
    "shop_unique_visitors": ([5, 6, 7, 8, 9, 10, 11], [8, 9, 10, 11, 12, 13, None]),
    "shop_orders_paid": ([1, 0, 2, 1, 3, 1, 0], [2, 1, 2, 2, 1, 2, None]),
    "shop_gmv_yuan": ([100, 0, 250.5, 90, 310, 120, 0], [200, 99.9, 240, 230, 130, 334.6, None]),
    "shop_order_conversion": ([0.2, 0.1, 0.3, 0.2, 0.3, 0.1, 0], [0.25] * 6 + [None]),
    "shop_payment_conversion": ([0.2, 0, 0.25, 0.1, 0.3, 0.1, 0], [0.2] * 6 + [None]),
}
"""Per metric: the week before's 7 days, then this week's (its Sunday not begun)."""


def daily() -> list[Snapshot]:
    days = [Snapshot() for _ in range(14)]
    for metric, (last, this) in DAILY_VALUES.items():
        for i, value in enumerate([*last, *this]):
            if value is not None:
                put(days[i], metric, value, window="day")
    return days


def sample_data() -> dict[str, object]:
    return report.build(week_snapshot(), WEEK, CHANNELS, previous=previous_snapshot(), days=daily())


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    return sample_data()


@pytest.fixture(scope="module")
def page(data: dict[str, object]) -> str:
    return report.to_html(data)


def headline_row(page: str, kpi: str) -> str:
    found = re.search(rf"<tr><td>{re.escape(kpi)}</td>.*?</tr>", page)
    assert found, kpi
    return found.group(0)


@pytest.mark.parametrize(
    ("kpi", "change", "colour"),
    [
        ("PV", "▲ +25.0 %", GREEN),
        ("orders paid", "▲ +25.0 %", GREEN),
        ("GMV (yuan)", "▲ +24.3 %", GREEN),
        ("order conversion", "▲ +4.0 pp", GREEN),
        ("bounce rate", "▲ +4.0 pp", RED),  # lower is better: up is bad news
        ("return rate", "▼ -3.0 pp", GREEN),  # lower is better: down is good news
        ("response median (s)", "▲ +50.0 %", RED),
        ("response p90 (s)", "▲ +30.0 %", RED),
        ("first response median (s)", "▼ -71.2 %", GREEN),
        ("UV", "= 0.0 %", GREY),
        ("payment conversion", "= 0.0 pp", GREY),
        ("total score", "▲ +3.6 %", GREEN),
    ],
)
def test_week_over_week_arrows_and_colours(page: str, kpi: str, change: str, colour: str) -> None:
    row = headline_row(page, kpi)
    assert f'style="color:{colour}">{change}</td>' in row


def test_week_over_week_values(data: dict[str, object]) -> None:
    headline = data["headline"]
    assert isinstance(headline, dict)
    assert headline["PV"] == {
        "this_week": 100,
        "last_week": 80,
        "change": 0.25,
        "trend": "up",
        "verdict": "better",
        "lower_is_better": False,
    }
    assert headline["bounce rate"]["trend"] == "up"
    assert headline["bounce rate"]["verdict"] == "worse"
    assert headline["bounce rate"]["lower_is_better"] is True
    assert headline["return rate"]["verdict"] == "better"
    assert headline["UV"]["verdict"] == "same"
    assert headline["AOV per buyer (yuan)"]["verdict"] is None  # no data either week
    assert list(headline)[-1] == "total score"


def test_no_data_has_no_arrow_and_no_colour(page: str) -> None:
    row = headline_row(page, "AOV per buyer (yuan)")
    assert "no data" in row
    assert "color:" not in row
    assert "▲" not in row and "▼" not in row


def test_markdown_keeps_every_section_and_names_the_verdict(data: dict[str, object]) -> None:
    markdown = report.to_markdown(data)
    for heading in (
        "## Week over week",
        "## Daily figures",
        "## Traffic",
        "## Orders and conversion",
        "## Members",
        "## Repeat purchase (buyers by paid orders this week)",
        "## Channels",
        "## Top 20 exit pages (exit rate)",
        "## Hot products (views)",
        "## Customer service",
        "## Scorecard",
    ):
        assert f"\n{heading}\n" in markdown, heading
    assert "| PV | 100 | 80 | ▲ +25.0 % (better) |" in markdown
    assert "| bounce rate | 44.0% | 40.0% | ▲ +4.0 pp (worse) |" in markdown
    assert "| 1 | `/checkout` | 50.0% |" in markdown
    assert "Repeat rate: 40.0%" in markdown
    assert "| **total** | **72.50** |" in markdown


def test_one_inline_svg_per_chart_and_nothing_fetched(data: dict[str, object], page: str) -> None:
    titles = list(report.charts(data))
    trend = [f"{t[0].upper()}{t[1:]} per day" for t, _ in report.DAILY]
    assert titles[:6] == trend
    assert len(titles) == 13  # 6 trends, 5 bar charts with rows, response times, scorecard
    assert page.count("<svg") == len(titles)
    for title in titles:
        assert page.count(f'<svg role="img" aria-label="{title}"') == 1, title
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert "http" not in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_chart_ids_are_unique_on_the_page(page: str) -> None:
    ids = Counter(re.findall(r' id="([^"]+)"', page))
    assert ids and max(ids.values()) == 1
    for ref in set(re.findall(r'(?:href="#|url\(#)([^")]+)', page)):
        assert ref in ids, ref


def test_a_bar_chart_without_rows_is_left_out() -> None:
    snap = week_snapshot()
    for key in [k for k in snap.samples if k[0] == "shop_top_exit_pages_rate"]:
        del snap.samples[key]
    data = report.build(snap, WEEK, CHANNELS, previous=previous_snapshot(), days=daily())
    assert "Top exit pages (exit rate)" not in report.charts(data)
    assert report.to_html(data).count("<svg") == 12


def test_report_json_carries_the_daily_series(data: dict[str, object], tmp_path: Path) -> None:
    paths = report.write(data, tmp_path)
    assert [p.name for p in paths] == ["report.md", "report.html", "report.json"]
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    this, last = saved["daily"]["this_week"], saved["daily"]["last_week"]
    assert this["date"] == [f"2026-03-{d}" for d in range(23, 30)]
    assert last["date"] == [f"2026-03-{d}" for d in range(16, 23)]
    for title, metric in report.DAILY:
        assert last[title] == DAILY_VALUES[metric][0], title
        assert this[title] == DAILY_VALUES[metric][1], title
    assert saved["headline"]["bounce rate"]["verdict"] == "worse"
    assert "<svg" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_response_time_quantiles_from_buckets(data: dict[str, object]) -> None:
    service = data["service"]
    assert isinstance(service, dict)
    # this week: 10 <= 5 s, 30 <= 10 s, 40 <= 15 s; the week before: 20, 36, 40
    assert service["response median (s)"]["this_week"] == pytest.approx(7.5)
    assert service["response p90 (s)"]["this_week"] == pytest.approx(13.0)
    assert service["response median (s)"]["last_week"] == pytest.approx(5.0)
    assert service["response p90 (s)"]["last_week"] == pytest.approx(10.0)
    assert service["first response median (s)"]["this_week"] == pytest.approx(3.125)
    assert service["first response p90 (s)"]["this_week"] == pytest.approx(7.5)
    assert service["first response median (s)"]["last_week"] == pytest.approx(10 + 5 / 6)
    assert service["first response p90 (s)"]["last_week"] == pytest.approx(10 + 25 / 6)


def test_quantile_in_the_open_bucket_is_its_lower_bound() -> None:
    assert report._quantile([(5.0, 0.0), (float("inf"), 4.0)], 0.5) == 5.0
    assert report._quantile([(5.0, 0.0), (float("inf"), 0.0)], 0.5) is None
    assert report._quantile([], 0.9) is None


def test_what_the_replayed_week_check_reads_is_still_there(data: dict[str, object]) -> None:
    """tests/integration/test_report.py reads these keys from report.json."""
    assert data["traffic"]["PV"]["this_week"] == 100  # type: ignore[index]
    assert data["orders"]["GMV (yuan)"]["this_week"] == 1243.25  # type: ignore[index]
    assert data["service"]["response avg (s)"]["this_week"] == 8.0  # type: ignore[index]
    assert data["repeat_purchase"] == {"1": 6, "2": 3, "6+": 1}
    assert [row["PV"] for row in data["channels"]] == [70, 30]  # type: ignore[attr-defined]
    assert [r["value"] for r in data["exit_pages"]] == [0.5, 0.25]  # type: ignore[attr-defined]
    assert data["scorecard"]["total"] == 72.5  # type: ignore[index]
    assert data["scorecard"]["items"]["teamwork"] == 5  # type: ignore[index]
    assert data["scorecard"]["last_week_total"] == 70  # type: ignore[index]


def test_build_wants_two_weeks_of_days() -> None:
    with pytest.raises(ValueError, match="14 daily snapshots"):
        report.build(Snapshot(), WEEK, CHANNELS, previous=Snapshot(), days=daily()[:7])


class DayCollector:
    """Answers the day's PV as the moment it was asked at, and records every moment."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.now_s = lambda: 0.0

    def families_at(self, at_s: float) -> list[Metric]:
        self.asked.append(at_s)
        family = GaugeMetricFamily("shop_page_views", "PV", labels=["window"])
        family.add_metric(["day"], at_s)
        return [family]

    def collect(self) -> Iterator[Metric]:
        yield from self.families_at(self.now_s())


@pytest.mark.parametrize(
    ("week", "short_or_long_sunday"),
    [("2026-W13", 23 * 3600), ("2026-W43", 25 * 3600)],  # clocks forward, then back
)
def test_daily_snapshots_end_at_zone_aware_midnights(week: str, short_or_long_sunday: int) -> None:
    zone = ZoneInfo("Europe/Berlin")
    start, end = report.week_bounds(week, "Europe/Berlin")
    collector = DayCollector()
    days = report.daily_snapshots(collector, start, "Europe/Berlin")  # type: ignore[arg-type]
    assert len(days) == 14 and len(collector.asked) == 14
    monday = datetime.fromtimestamp(start, zone).date()
    for i, at in enumerate(collector.asked):
        after = datetime.fromtimestamp(at + 1, zone)
        assert (after.hour, after.minute, after.second) == (0, 0, 0)
        assert after.date() == monday + timedelta(days=i - 7 + 1)
        assert days[i].get("shop_page_views", window="day") == at
    assert collector.asked[0] + 1 - (start - 7 * 86_400) == 86_400  # the week before: no change
    assert collector.asked[-1] + 1 == end
    assert collector.asked[-1] - collector.asked[-2] == short_or_long_sunday


def test_daily_snapshots_stop_at_now() -> None:
    start, _ = report.week_bounds("2026-W13", "Asia/Shanghai")
    wednesday_noon = start + 2 * 86_400 + 12 * 3600
    collector = DayCollector()
    days = report.daily_snapshots(
        collector,  # type: ignore[arg-type]
        start,
        "Asia/Shanghai",
        now_s=wednesday_noon,
    )
    assert len(days) == 14
    assert collector.asked[-3:] == [start + 86_400 - 1, start + 2 * 86_400 - 1, wednesday_noon]
    assert all(day.samples == {} for day in days[10:])  # Thursday to Sunday: not begun
