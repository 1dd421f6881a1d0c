"""The weekly operations review, as Markdown and as a self-contained HTML page.

Figures come from the exporter's own collector asked "as of" the last second
of the week, so the report shows exactly what the dashboards showed then, on
live data or on replayed history. ``report.json`` holds the same figures for
machines.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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


def build(snap: Snapshot, week: str, channels: tuple[str, ...]) -> dict[str, Any]:
    """The report's figures as plain data."""

    def pair(metric: str) -> dict[str, float | None]:
        this, last = snap.get(metric, window="week"), snap.get(metric, window="last_week")
        change = (this - last) / last if this is not None and last else None
        return {"this_week": this, "last_week": last, "change": change}

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
    histogram: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name in ("shop_cs_response_seconds_bucket", "shop_cs_first_response_seconds_bucket"):
        for labels, value in snap.series(name, window="week"):
            histogram[name].append((float(labels["le"]), value))
        histogram[name].sort()
    scorecard = {
        item: snap.get("shop_scorecard_score", period="week", item=item)
        for item, _, _ in SCORE_ITEMS
    }
    return {
        "week": week,
        "traffic": {title: pair(metric) for title, metric in TRAFFIC},
        "orders": {title: pair(metric) for title, metric in ORDERS},
        "members": {title: pair(metric) for title, metric in MEMBERS},
        "repeat_purchase": {
            r["orders"]: v for r, v in snap.series("shop_repeat_buyers", window="week")
        },
        "repeat_rate": snap.get("shop_repeat_rate", window="week"),
        "channels": per_channel,
        "exit_pages": ranking("shop_top_exit_pages_rate", "page"),
        "tops": {title: ranking(metric) for title, metric in TOPS},
        "service": {title: pair(metric) for title, metric in SERVICE}
        | {
            "first response p90 (s)": {
                "this_week": _quantile(histogram["shop_cs_first_response_seconds_bucket"], 0.9),
                "last_week": None,
                "change": None,
            }
        },
        "scorecard": {"items": scorecard, "total": snap.get("shop_scorecard_total", period="week")},
    }


_PERCENT = re.compile(r"\b(rate|conversion|ratio|share|within|change|per visitor|satisfaction)\b")


def _fmt(value: float | None, title: str = "") -> str:
    if value is None:
        return "no data"
    if _PERCENT.search(title):
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _pairs_md(title: str, rows: dict[str, dict[str, float | None]]) -> list[str]:
    lines = [f"## {title}", "", "| | this week | last week | change |", "|---|---:|---:|---:|"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {_fmt(row['this_week'], name)} | {_fmt(row['last_week'], name)}"
            f" | {_fmt(row['change'], 'change')} |"
        )
    return [*lines, ""]


def to_markdown(data: dict[str, Any]) -> str:
    """The review as Markdown."""
    out = [f"# Weekly operations review {data['week']}", ""]
    out += _pairs_md("Traffic", data["traffic"])
    out += _pairs_md("Orders and conversion", data["orders"])
    out += _pairs_md("Members", data["members"])
    out += [
        "## Repeat purchase (buyers by paid orders this week)",
        "",
        "| orders | buyers |",
        "|---|---:|",
    ]
    out += [f"| {k} | {_fmt(v)} |" for k, v in sorted(data["repeat_purchase"].items())]
    out += [
        "",
        f"Repeat rate: {_fmt(data['repeat_rate'], 'rate')}",
        "",
        "## Channels",
        "",
        "| channel | PV | UV | order conversion | payment conversion | UV cost (yuan) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in data["channels"]:
        out.append(
            f"| {row['channel']} | {_fmt(row['PV'])} | {_fmt(row['UV'])} | "
            f"{_fmt(row['order conversion'], 'conversion')} | "
            f"{_fmt(row['payment conversion'], 'conversion')} | "
            f"{_fmt(row['UV cost (yuan)'])} |"
        )
    out += [
        "",
        "## Top 20 exit pages (exit rate)",
        "",
        "| # | page | exit rate |",
        "|---|---|---:|",
    ]
    out += [
        f"| {r['rank']} | `{r['item']}` | {_fmt(r['value'], 'rate')} |" for r in data["exit_pages"]
    ]
    for title, rows in data["tops"].items():
        out += [
            "",
            f"## {title[0].upper()}{title[1:]}",
            "",
            "| # | item | value |",
            "|---|---|---:|",
        ]
        out += [f"| {r['rank']} | {r['item']} | {_fmt(r['value'])} |" for r in rows]
    out += ["", *_pairs_md("Customer service", data["service"])]
    out += ["## Scorecard", "", "| item | score |", "|---|---:|"]
    out += [f"| {item} | {_fmt(score)} |" for item, score in data["scorecard"]["items"].items()]
    out += [f"| **total** | **{_fmt(data['scorecard']['total'])}** |", ""]
    return "\n".join(out)


def _bars(title: str, rows: list[tuple[str, float]], percent: bool = False) -> str:
    """A horizontal bar chart as inline SVG."""
    if not rows:
        return f"<h3>{html.escape(title)}</h3><p>no data</p>"
    top = max(v for _, v in rows) or 1.0
    height = 22 * len(rows) + 10
    parts = [f'<svg width="640" height="{height}" role="img" aria-label="{html.escape(title)}">']
    for i, (label, value) in enumerate(rows):
        y = 5 + 22 * i
        width = 380 * value / top
        shown = f"{value:.1%}" if percent else f"{value:,.0f}"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label[:28])}</text>'
            f'<rect x="190" y="{y}" width="{width:.1f}" height="16" fill="#3b82f6"/>'
            f'<text x="{196 + width:.1f}" y="{y + 13}" font-size="12">{shown}</text>'
        )
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def to_html(data: dict[str, Any], markdown: str) -> str:
    """A self-contained page: charts as inline SVG, then every table."""
    traffic = data["traffic"]
    charts = [
        _bars(
            "PV: this week and last week",
            [
                ("this week", traffic["PV"]["this_week"] or 0),
                ("last week", traffic["PV"]["last_week"] or 0),
            ],
        ),
        _bars(
            "Paid orders: this week and last week",
            [
                ("this week", data["orders"]["orders paid"]["this_week"] or 0),
                ("last week", data["orders"]["orders paid"]["last_week"] or 0),
            ],
        ),
        _bars(
            "Repeat purchase: buyers by paid orders",
            [(f"{k} orders", v) for k, v in sorted(data["repeat_purchase"].items())],
        ),
        _bars("PV per channel", [(r["channel"], r["PV"] or 0) for r in data["channels"]]),
        _bars(
            "Payment conversion per channel",
            [(r["channel"], r["payment conversion"] or 0) for r in data["channels"]],
            True,
        ),
        _bars(
            "Top exit pages (exit rate)",
            [(r["item"], r["value"]) for r in data["exit_pages"][:10]],
            True,
        ),
        _bars(
            "Hot products (views)",
            [(r["item"], r["value"]) for r in data["tops"]["hot products (views)"][:10]],
        ),
        _bars("Scorecard", [(k, v or 0) for k, v in data["scorecard"]["items"].items()]),
    ]
    body = "\n".join(f"<section>{chart}</section>" for chart in charts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Weekly operations review {html.escape(data['week'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:980px}"
        "section{display:inline-block;vertical-align:top;margin:0 2em 1.5em 0}"
        "pre{white-space:pre-wrap;background:#f6f8fa;padding:1em}</style></head><body>"
        f"<h1>Weekly operations review {html.escape(data['week'])}</h1>"
        f"<p>Total score: <b>{_fmt(data['scorecard']['total'])}</b> / 100</p>{body}"
        f"<h2>All figures</h2><pre>{html.escape(markdown)}</pre></body></html>\n"
    )


def write(data: dict[str, Any], out: Path) -> list[Path]:
    """report.md, report.html and report.json in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(data)
    files = [out / "report.md", out / "report.html", out / "report.json"]
    files[0].write_text(markdown, encoding="utf-8")
    files[1].write_text(to_html(data, markdown), encoding="utf-8")
    files[2].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return files
