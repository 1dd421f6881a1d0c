"""The weekly operations review, as Markdown and as a self-contained HTML page.

Figures come from the exporter's own collector asked "as of" the last second
of the week, so the report shows exactly what the dashboards showed then, on
live data or on replayed history. The week before is asked the same way at its
own last second, and each of the 14 days at its last second, when the ``day``
window holds the day's total: the daily trend lines compare a week's days with
the same weekdays of the week before. ``report.json`` holds the same figures
for machines.

Charts are drawn by matplotlib on ``Figure`` objects, never through pyplot, so no
GUI backend is ever chosen and nothing global is kept between reports; they are
saved by its SVG backend and inlined, so the page loads nothing from anywhere.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from streams.kpi.scorecard import ITEMS as SCORE_ITEMS
from streams.metrics.collector import KpiCollector

Labels = frozenset[tuple[str, str]]


def week_bounds(iso_week: str, timezone: str) -> tuple[int, int]:
    """Epoch seconds of Monday 00:00 and of the next Monday 00:00 of ``YYYY-Www``."""
    year, _, week = iso_week.partition("-W")
    monday = datetime.fromisocalendar(int(year), int(week), 1)
    zone = ZoneInfo(timezone)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    end_day = monday + timedelta(days=7)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp())


def last_complete_week(now_s: float, timezone: str) -> str:
    """``YYYY-Www`` of the last week that has ended."""
    moment = datetime.fromtimestamp(now_s, ZoneInfo(timezone)) - timedelta(days=7)
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Snapshot:
    """Every sample the collector gave, by name and labels."""

    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        """One sample, or None when it has no data."""
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name`` whose labels include ``labels``."""
        want = set(labels.items())
        return [
            (dict(found), value)
            for (n, found), value in self.samples.items()
            if n == name and want <= set(found)
        ]


def snapshot(collector: KpiCollector, at_s: float) -> Snapshot:
    """What the exporter would have answered at ``at_s``."""
    snap = Snapshot()
    for family in collector.families_at(at_s):
        for sample in family.samples:
            snap.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return snap


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Like PromQL's histogram_quantile over cumulative (upper bound, count) pairs."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None


TRAFFIC = (
    ("PV", "shop_page_views"),
    ("UV", "shop_unique_visitors"),
    ("sessions", "shop_sessions"),
    ("bounce rate", "shop_bounce_rate"),
    ("pages per session", "shop_pages_per_session"),
    ("session duration (s)", "shop_session_duration_avg_seconds"),
)
ORDERS = (
    ("orders placed", "shop_orders_created"),
    ("orders paid", "shop_orders_paid"),
    ("GMV (yuan)", "shop_gmv_yuan"),
    ("net GMV (yuan)", "shop_net_gmv_yuan"),
    ("AOV per buyer (yuan)", "shop_aov_per_buyer_yuan"),
    ("order conversion", "shop_order_conversion"),
    ("payment conversion", "shop_payment_conversion"),
    ("orders per visitor", "shop_orders_per_visitor"),
    ("return rate", "shop_return_rate"),
)
MEMBERS = (
    ("registrations", "shop_registrations"),
    ("active members", "shop_active_members"),
    ("new-member purchase ratio", "shop_new_member_purchase_ratio"),
    ("all-member purchase ratio", "shop_member_purchase_ratio"),
)
SERVICE = (
    ("conversations", "shop_cs_conversations"),
    ("first response avg (s)", "shop_cs_first_response_avg_seconds"),
    ("response avg (s)", "shop_cs_response_avg_seconds"),
    ("responses within SLA", "shop_cs_sla_share"),
    ("complaints", "shop_complaints_opened"),
    ("complaint handling avg (s)", "shop_complaint_handling_avg_seconds"),
    ("complaint satisfaction", "shop_complaint_satisfaction"),
    ("good-review rate", "shop_good_review_rate"),
)
TOPS = (
    ("hot products (views)", "shop_top_products_views"),
    ("hot categories (views)", "shop_top_categories_views"),
    ("hot brands (views)", "shop_top_brands_views"),
    ("hot products (clicks)", "shop_top_products_clicks"),
    ("product sales (yuan)", "shop_top_products_sales_yuan"),
    ("category sales (yuan)", "shop_top_categories_sales_yuan"),
    ("brand sales (yuan)", "shop_top_brands_sales_yuan"),
)


DAILY = (
    ("PV", "shop_page_views"),
    ("UV", "shop_unique_visitors"),
    ("orders paid", "shop_orders_paid"),
    ("GMV (yuan)", "shop_gmv_yuan"),
    ("order conversion", "shop_order_conversion"),
    ("payment conversion", "shop_payment_conversion"),
)
"""Figures drawn per day, this week's against the same weekdays of the week before."""
RESPONSE_TIMES = (
    ("first response", "shop_cs_first_response_seconds_bucket"),
    ("response", "shop_cs_response_seconds_bucket"),
)
QUANTILES = (("median", 0.5), ("p90", 0.9))
HEADLINE = (
    ("traffic", "PV"),
    ("traffic", "UV"),
    ("traffic", "bounce rate"),
    ("orders", "orders paid"),
    ("orders", "GMV (yuan)"),
    ("orders", "AOV per buyer (yuan)"),
    ("orders", "order conversion"),
    ("orders", "payment conversion"),
    ("orders", "return rate"),
    ("service", "first response median (s)"),
    ("service", "first response p90 (s)"),
    ("service", "response median (s)"),
    ("service", "response p90 (s)"),
    ("service", "good-review rate"),
)
"""(section, title) of the KPIs a manager reads first; "total score" follows them."""
LOWER_IS_BETTER = frozenset(
    {
        "bounce rate",
        "return rate",
        "complaints",
        "first response avg (s)",
        "response avg (s)",
        "complaint handling avg (s)",
        *(f"{name} {q} (s)" for name, _ in RESPONSE_TIMES for q, _ in QUANTILES),
    }
)
"""KPIs where a fall is good news: their week-over-week colour is flipped."""


def _midnight(day: date, zone: ZoneInfo) -> int:
    """Epoch second of ``day``'s local midnight, with that date's own UTC offset (DST)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def daily_snapshots(
    collector: KpiCollector, week_start_s: int, timezone: str, now_s: float | None = None
) -> list[Snapshot]:
    """One snapshot per day: the 7 days of the week before, then the 7 of this week.

    Each is taken at its day's last second, when the ``day`` window holds that day's
    total. Day ends are zone-aware midnights because a day lasts 23 or 25 hours when
    the clocks change. A day still running when the report is written is taken at
    ``now_s``; a day not yet begun has no figures (an empty snapshot).
    """
    zone = ZoneInfo(timezone)
    monday = datetime.fromtimestamp(week_start_s, zone).date()
    days = []
    for offset in range(-7, 7):
        day = monday + timedelta(days=offset)
        start, end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        if now_s is not None and now_s < start:
            days.append(Snapshot())
        else:
            days.append(snapshot(collector, end - 1 if now_s is None else min(now_s, end - 1)))
    return days


def _buckets(snap: Snapshot, name: str) -> list[tuple[float, float]]:
    """The week's cumulative (upper bound, count) pairs of a gauge histogram, in order."""
    return sorted(
        (float(labels["le"]), value) for labels, value in snap.series(name, window="week")
    )


def _pair(this: float | None, last: float | None) -> dict[str, float | None]:
    change = (this - last) / last if this is not None and last else None
    return {"this_week": this, "last_week": last, "change": change}


def _judge(row: dict[str, float | None], title: str) -> dict[str, Any]:
    """``row`` with its direction and whether that is good news for this KPI."""
    this, last = row["this_week"], row["last_week"]
    lower = title in LOWER_IS_BETTER
    trend: str | None
    verdict: str | None
    if this is None or last is None:
        trend = verdict = None
    elif this == last:
        trend, verdict = "flat", "same"
    else:
        trend = "up" if this > last else "down"
        verdict = "better" if (this > last) != lower else "worse"
    return {**row, "trend": trend, "verdict": verdict, "lower_is_better": lower}


def _monday(week: str) -> date:
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def _daily(days: Sequence[Snapshot], monday: date) -> dict[str, list[Any]]:
    """One week's days as columns: ``date`` and one list of 7 values per KPI."""
    columns: dict[str, list[Any]] = {
        "date": [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    }
    for title, metric in DAILY:
        columns[title] = [day.get(metric, window="day") for day in days]
    return columns


def build(
    snap: Snapshot,
    week: str,
    channels: tuple[str, ...],
    *,
    previous: Snapshot,
    days: Sequence[Snapshot],
) -> dict[str, Any]:
    """The report's figures as plain data.

    ``snap`` is taken at the week's last second and ``previous`` at the last second
    of the week before, so last week's figures (its scorecard and response-time
    quantiles too) read exactly as they did then; ``days`` are the 14 snapshots of
    :func:`daily_snapshots`.
    """
    if len(days) != 14:
        raise ValueError(f"expected 14 daily snapshots (two weeks), got {len(days)}")

    def pair(metric: str) -> dict[str, float | None]:
        return _pair(snap.get(metric, window="week"), previous.get(metric, window="week"))

    def ranking(metric: str, label: str = "item") -> list[dict[str, Any]]:
        rows = snap.series(metric, window="week")
        rows.sort(key=lambda row: int(row[0]["rank"]))
        return [{"rank": int(r["rank"]), "item": r[label], "value": v} for r, v in rows]

    per_channel = []
    for channel in channels:
        row: dict[str, Any] = {"channel": channel}
        for key, metric in (
            ("PV", "shop_page_views_by_channel"),
            ("UV", "shop_unique_visitors_by_channel"),
            ("payment conversion", "shop_payment_conversion_by_channel"),
            ("order conversion", "shop_order_conversion_by_channel"),
            ("UV cost (yuan)", "shop_uv_cost_yuan_by_channel"),
        ):
            row[key] = snap.get(metric, window="week", channel=channel)
        per_channel.append(row)
    service = {title: pair(metric) for title, metric in SERVICE}
    for name, histogram in RESPONSE_TIMES:
        for q_name, q in QUANTILES:
            service[f"{name} {q_name} (s)"] = _pair(
                _quantile(_buckets(snap, histogram), q), _quantile(_buckets(previous, histogram), q)
            )
    sections = {
        "traffic": {title: pair(metric) for title, metric in TRAFFIC},
        "orders": {title: pair(metric) for title, metric in ORDERS},
        "service": service,
    }
    total = snap.get("shop_scorecard_total", period="week")
    last_total = previous.get("shop_scorecard_total", period="week")
    headline = {title: _judge(sections[section][title], title) for section, title in HEADLINE}
    headline["total score"] = _judge(_pair(total, last_total), "total score")
    monday = _monday(week)
    scorecard = {
        item: snap.get("shop_scorecard_score", period="week", item=item)
        for item, _, _ in SCORE_ITEMS
    }
    return {
        "week": week,
        "headline": headline,
        "daily": {
            "this_week": _daily(days[7:], monday),
            "last_week": _daily(days[:7], monday - timedelta(days=7)),
        },
        "traffic": sections["traffic"],
        "orders": sections["orders"],
        "members": {title: pair(metric) for title, metric in MEMBERS},
        "repeat_purchase": {
            r["orders"]: v for r, v in snap.series("shop_repeat_buyers", window="week")
        },
        "repeat_rate": snap.get("shop_repeat_rate", window="week"),
        "channels": per_channel,
        "exit_pages": ranking("shop_top_exit_pages_rate", "page"),
        "tops": {title: ranking(metric) for title, metric in TOPS},
        "service": service,
        "scorecard": {"items": scorecard, "total": total, "last_week_total": last_total},
    }


_PERCENT = re.compile(r"\b(rate|conversion|ratio|share|within|change|per visitor|satisfaction)\b")
ARROWS = {"up": "▲", "down": "▼", "flat": "="}
COLOURS = {"better": "#15803d", "worse": "#b91c1c", "same": "#6b7280"}
"""Week-over-week verdicts: green for good news, red for bad, grey for no change."""
THIS_WEEK, LAST_WEEK = "#2563eb", "#9ca3af"


def _fmt(value: float | None, title: str = "") -> str:
    if value is None:
        return "no data"
    if _PERCENT.search(title):
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _change(row: dict[str, Any], title: str) -> str:
    """Week-over-week change: percentage points for rates, a relative change otherwise.

    A relative change of a rate ("+10 %" for 40 % -> 44 %) is easily misread, so
    rates show the difference in points.
    """
    this, last = row["this_week"], row["last_week"]
    if this is None or last is None:
        return "no data"
    unit = "pp" if _PERCENT.search(title) else "%"
    if this == last:
        return f"0.0 {unit}"
    if unit == "pp":
        return f"{(this - last) * 100:+.1f} pp"
    if not last:
        return "new"
    return f"{(this - last) / abs(last):+.1%}".replace("%", " %")


@dataclass(frozen=True)
class _Judged:
    """A change cell with its verdict, coloured in HTML."""

    text: str
    verdict: str | None


Cell = str | _Judged


@dataclass(frozen=True)
class _Table:
    """One section of the review, rendered alike to Markdown and to HTML."""

    title: str
    header: tuple[str, ...]
    align: str
    """``l`` or ``r`` per column."""
    rows: list[tuple[Cell, ...]]
    total: tuple[str, ...] = ()
    code_column: int | None = None
    note: str = ""
    charts: tuple[str, ...] = ()
    """Titles of the :func:`charts` drawn above the table in HTML."""


def _pairs_table(
    title: str, rows: dict[str, dict[str, Any]], charts: tuple[str, ...] = ()
) -> _Table:
    return _Table(
        title,
        ("", "this week", "last week", "change"),
        "lrrr",
        [
            (name, _fmt(row["this_week"], name), _fmt(row["last_week"], name), _change(row, name))
            for name, row in rows.items()
        ],
        charts=charts,
    )


def _headline_table(rows: dict[str, dict[str, Any]]) -> _Table:
    cells: list[tuple[Cell, ...]] = []
    for name, row in rows.items():
        arrow = ARROWS.get(row["trend"] or "")
        text = _change(row, name)
        cells.append(
            (
                name,
                _fmt(row["this_week"], name),
                _fmt(row["last_week"], name),
                _Judged(f"{arrow} {text}" if arrow else text, row["verdict"]),
            )
        )
    return _Table("Week over week", ("KPI", "this week", "last week", "change"), "lrrr", cells)


def _daily_title(title: str) -> str:
    return f"{title[0].upper()}{title[1:]} per day"


def _tables(data: dict[str, Any]) -> list[_Table]:
    """Every section of the review, in reading order."""
    daily = data["daily"]
    day_rows: list[tuple[Cell, ...]] = []
    for week in ("last_week", "this_week"):
        columns = daily[week]
        for i, day in enumerate(columns["date"]):
            label = f"{date.fromisoformat(day):%a %Y-%m-%d}"
            day_rows.append((label, *(_fmt(columns[title][i], title) for title, _ in DAILY)))
    tables = [
        _headline_table(data["headline"]),
        _Table(
            "Daily figures",
            ("day", *(title for title, _ in DAILY)),
            "l" + "r" * len(DAILY),
            day_rows,
            charts=tuple(_daily_title(title) for title, _ in DAILY),
        ),
        _pairs_table("Traffic", data["traffic"]),
        _pairs_table("Orders and conversion", data["orders"]),
        _pairs_table("Members", data["members"]),
        _Table(
            "Repeat purchase (buyers by paid orders this week)",
            ("orders", "buyers"),
            "lr",
            [(k, _fmt(v)) for k, v in sorted(data["repeat_purchase"].items())],
            note=f"Repeat rate: {_fmt(data['repeat_rate'], 'rate')}",
            charts=("Repeat purchase: buyers by paid orders",),
        ),
        _Table(
            "Channels",
            ("channel", "PV", "UV", "order conversion", "payment conversion", "UV cost (yuan)"),
            "lrrrrr",
            [
                (
                    row["channel"],
                    _fmt(row["PV"]),
                    _fmt(row["UV"]),
                    _fmt(row["order conversion"], "conversion"),
                    _fmt(row["payment conversion"], "conversion"),
                    _fmt(row["UV cost (yuan)"]),
                )
                for row in data["channels"]
            ],
            charts=("PV per channel", "Payment conversion per channel"),
        ),
        _Table(
            "Top 20 exit pages (exit rate)",
            ("#", "page", "exit rate"),
            "llr",
            [(str(r["rank"]), r["item"], _fmt(r["value"], "rate")) for r in data["exit_pages"]],
            code_column=1,
            charts=("Top exit pages (exit rate)",),
        ),
    ]
    for title, rows in data["tops"].items():
        tables.append(
            _Table(
                f"{title[0].upper()}{title[1:]}",
                ("#", "item", "value"),
                "llr",
                [(str(r["rank"]), r["item"], _fmt(r["value"])) for r in rows],
                charts=("Hot products (views)",) if title == "hot products (views)" else (),
            )
        )
    tables.append(_pairs_table("Customer service", data["service"], ("Response times (s)",)))
    tables.append(
        _Table(
            "Scorecard",
            ("item", "score"),
            "lr",
            [(item, _fmt(score)) for item, score in data["scorecard"]["items"].items()],
            total=("total", _fmt(data["scorecard"]["total"])),
            charts=("Scorecard",),
        )
    )
    return tables


def _period(data: dict[str, Any]) -> str:
    this, last = data["daily"]["this_week"]["date"], data["daily"]["last_week"]["date"]
    return f"{this[0]} to {this[-1]}, against {last[0]} to {last[-1]}"


def _md_cell(cell: Cell, code: bool = False) -> str:
    if isinstance(cell, _Judged):
        return f"{cell.text} ({cell.verdict})" if cell.verdict else cell.text
    text = cell.replace("|", "\\|")
    return f"`{text}`" if code else text


def to_markdown(data: dict[str, Any]) -> str:
    """The review as Markdown (the same tables as the HTML page, without charts)."""
    out = [f"# Weekly operations review {data['week']}", "", _period(data), ""]
    for table in _tables(data):
        if not table.rows:
            out += [f"## {table.title}", "", "no data", ""]
            continue
        out += [
            f"## {table.title}",
            "",
            "| " + " | ".join(table.header) + " |",
            "|" + "|".join("---:" if a == "r" else "---" for a in table.align) + "|",
        ]
        for row in table.rows:
            cells = (_md_cell(c, i == table.code_column) for i, c in enumerate(row))
            out.append("| " + " | ".join(cells) + " |")
        if table.total:
            out.append("| " + " | ".join(f"**{c}**" for c in table.total) + " |")
        out += ["", *([table.note, ""] if table.note else [])]
    return "\n".join(out)


def _compact(value: float, _position: int | None = None) -> str:
    """An axis tick or bar label: 1.2M, 35k, 2.5k, 940."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _values(values: Sequence[float | None]) -> list[float]:
    """None (no data) as NaN, which matplotlib leaves as a gap in a line."""
    return [math.nan if v is None else v for v in values]


_STYLE: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
}
"""Applied while drawing and saving; ``svg.fonttype`` none keeps text as text (small,
selectable, drawn by the browser's fonts, so any script shows)."""


def _titled(title: str, height: float, width: float = 4.6) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.suptitle(title, x=0.02, ha="left", fontweight="bold", fontsize=10)
    return figure, figure.add_subplot()


def _legend(axes: Axes) -> None:
    """Above the plot, where it never hides a line or a bar label."""
    axes.legend(
        frameon=False,
        fontsize=8,
        loc="lower right",
        bbox_to_anchor=(1, 1),
        ncols=2,
        borderaxespad=0.2,
    )


def _trend(
    title: str, dates: list[str], this: list[float | None], last: list[float | None], percent: bool
) -> Figure:
    figure, axes = _titled(title, 2.5)
    x = list(range(len(dates)))
    axes.plot(
        x,
        _values(last),
        color=LAST_WEEK,
        linestyle="--",
        marker="o",
        markersize=3,
        label="week before",
    )
    axes.plot(
        x, _values(this), color=THIS_WEEK, marker="o", markersize=4, linewidth=2, label="this week"
    )
    axes.set_xticks(x, [f"{date.fromisoformat(d):%a}" for d in dates])
    axes.yaxis.set_major_formatter(
        ticker.PercentFormatter(1.0, decimals=1) if percent else ticker.FuncFormatter(_compact)
    )
    if not percent:
        axes.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", alpha=0.3)
    _legend(axes)
    return figure


def _bar_chart(title: str, rows: list[tuple[str, float]], percent: bool = False) -> Figure:
    figure, axes = _titled(title, 0.7 + 0.25 * len(rows))
    y = list(range(len(rows)))
    bars = axes.barh(y, [v for _, v in rows], color=THIS_WEEK, height=0.7)
    axes.set_yticks(y, [label[:28] for label, _ in rows])
    axes.invert_yaxis()
    axes.bar_label(
        bars, [f"{v:.1%}" if percent else _compact(v) for _, v in rows], padding=3, fontsize=8
    )
    axes.margins(x=0.18)
    axes.xaxis.set_visible(False)
    axes.spines["bottom"].set_visible(False)
    return figure


def _response_chart(service: dict[str, dict[str, Any]]) -> Figure:
    """Median and p90 of both response times, this week's bars over the week before's."""
    names = [f"{name} {q}" for name, _ in RESPONSE_TIMES for q, _ in QUANTILES]
    figure, axes = _titled("Response times (s)", 2.3)
    y = list(range(len(names)))
    for offset, week, colour, label in (
        (-0.2, "this_week", THIS_WEEK, "this week"),
        (0.2, "last_week", LAST_WEEK, "week before"),
    ):
        values = [service[f"{name} (s)"][week] for name in names]
        bars = axes.barh(
            [i + offset for i in y], [v or 0 for v in values], 0.4, color=colour, label=label
        )
        axes.bar_label(
            bars, ["no data" if v is None else f"{v:,.1f}" for v in values], padding=3, fontsize=8
        )
    axes.set_yticks(y, names)
    axes.invert_yaxis()
    axes.margins(x=0.18)
    axes.xaxis.set_visible(False)
    axes.spines["bottom"].set_visible(False)
    _legend(axes)
    return figure


def _scorecard_chart(items: dict[str, float | None]) -> Figure:
    """Each item's score over the points it is worth."""
    figure, axes = _titled("Scorecard", 0.7 + 0.25 * len(items))
    worth = {name: points for name, points, _ in SCORE_ITEMS}
    y = list(range(len(items)))
    axes.barh(y, [worth.get(name, 0) for name in items], color="#e5e7eb", height=0.7)
    bars = axes.barh(y, [v or 0 for v in items.values()], color=THIS_WEEK, height=0.7)
    axes.bar_label(
        bars,
        [f"{_compact(v or 0)} / {_compact(worth.get(name, 0))}" for name, v in items.items()],
        padding=3,
        fontsize=8,
    )
    axes.set_yticks(y, list(items))
    axes.invert_yaxis()
    axes.margins(x=0.25)
    axes.xaxis.set_visible(False)
    axes.spines["bottom"].set_visible(False)
    return figure


def charts(data: dict[str, Any]) -> dict[str, Figure]:
    """Every chart of the HTML page by title; a bar chart with no rows is left out."""
    with matplotlib.rc_context(_STYLE):
        daily = data["daily"]
        out = {
            _daily_title(title): _trend(
                _daily_title(title),
                daily["this_week"]["date"],
                daily["this_week"][title],
                daily["last_week"][title],
                bool(_PERCENT.search(title)),
            )
            for title, _ in DAILY
        }
        bars: list[tuple[str, list[tuple[str, float]], bool]] = [
            (
                "Repeat purchase: buyers by paid orders",
                [
                    (f"{k} order{'' if k == '1' else 's'}", v)
                    for k, v in sorted(data["repeat_purchase"].items())
                ],
                False,
            ),
            ("PV per channel", [(r["channel"], r["PV"] or 0) for r in data["channels"]], False),
            (
                "Payment conversion per channel",
                [(r["channel"], r["payment conversion"] or 0) for r in data["channels"]],
                True,
            ),
            (
                "Top exit pages (exit rate)",
                [(r["item"], r["value"]) for r in data["exit_pages"][:10]],
                True,
            ),
            (
                "Hot products (views)",
                [(r["item"], r["value"]) for r in data["tops"]["hot products (views)"][:10]],
                False,
            ),
        ]
        out |= {title: _bar_chart(title, rows, pct) for title, rows, pct in bars if rows}
        out["Response times (s)"] = _response_chart(data["service"])
        out["Scorecard"] = _scorecard_chart(data["scorecard"]["items"])
    return out


def _svg(figure: Figure, title: str) -> str:
    """``figure`` as an inline ``<svg>`` element for a page holding several of them.

    No XML prolog, metadata or namespace URLs (an HTML page needs none); ids get a
    per-chart prefix so one chart's clip paths and markers never resolve to another's.
    """
    key = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    buffer = io.StringIO()
    salted: dict[RcKeyType, Any] = {**_STYLE, "svg.hashsalt": key}
    with matplotlib.rc_context(salted), warnings.catch_warnings():
        # Text stays text, drawn by the browser; only its measuring uses matplotlib's font.
        warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
        figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = (
        svg.replace(' id="', f' id="{key}-')
        .replace('href="#', f'href="#{key}-')
        .replace("url(#", f"url(#{key}-")
    )
    label = html.escape(title, quote=True)
    return svg.replace("<svg", f'<svg role="img" aria-label="{label}"', 1).strip()


def _html_cell(cell: Cell, align: str, code: bool) -> str:
    attrs = ' class="num"' if align == "r" else ""
    if isinstance(cell, _Judged):
        colour = COLOURS.get(cell.verdict or "")
        if colour:
            attrs = f' class="num {cell.verdict}" style="color:{colour}"'
        return f"<td{attrs}>{html.escape(cell.text)}</td>"
    text = html.escape(cell)
    return f"<td{attrs}>{f'<code>{text}</code>' if code else text}</td>"


def _html_table(table: _Table, svgs: dict[str, str]) -> str:
    parts = [f"<section><h2>{html.escape(table.title)}</h2>"]
    shown = [svgs[title] for title in table.charts if title in svgs]
    if shown:
        parts.append('<div class="charts">' + "".join(shown) + "</div>")
    head = "".join(
        f"<th{' class=num' if a == 'r' else ''}>{html.escape(h)}</th>"
        for h, a in zip(table.header, table.align, strict=True)
    )
    if not table.rows:
        return "".join(parts) + "<p>no data</p></section>"
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
    for row in table.rows:
        cells = "".join(
            _html_cell(c, a, i == table.code_column)
            for i, (c, a) in enumerate(zip(row, table.align, strict=True))
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody>")
    if table.total:
        cells = "".join(
            f"<th{' class=num' if a == 'r' else ''}>{html.escape(c)}</th>"
            for c, a in zip(table.total, table.align, strict=True)
        )
        parts.append(f"<tfoot><tr>{cells}</tr></tfoot>")
    parts.append("</table>")
    if table.note:
        parts.append(f"<p>{html.escape(table.note)}</p>")
    return "".join(parts) + "</section>"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;"
    "color:#111827}"
    "h2{margin-top:1.6em;border-bottom:1px solid #e5e7eb;padding-bottom:.2em}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1em;"
    "margin:1em 0}"
    ".charts svg{width:100%;height:auto}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{padding:.25em .8em;border-bottom:1px solid #f3f4f6;text-align:left}"
    ".num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.better,td.worse,td.same{font-weight:600}"
    "tfoot th{border-top:2px solid #9ca3af}"
)


def to_html(data: dict[str, Any]) -> str:
    """A self-contained page: every chart is inline SVG, nothing is fetched."""
    svgs = {title: _svg(figure, title) for title, figure in charts(data).items()}
    week = html.escape(data["week"])
    body = "".join(_html_table(table, svgs) for table in _tables(data))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Weekly operations review {week}</title><style>{_CSS}</style></head><body>"
        f"<h1>Weekly operations review {week}</h1><p>{html.escape(_period(data))}</p>"
        f"<p>Total score: <b>{_fmt(data['scorecard']['total'])}</b> / 100</p>{body}"
        "</body></html>\n"
    )


def write(data: dict[str, Any], out: Path) -> list[Path]:
    """report.md, report.html and report.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.md", out / "report.html", out / "report.json"]
    files[0].write_text(to_markdown(data), encoding="utf-8")
    files[1].write_text(to_html(data), encoding="utf-8")
    files[2].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return files
