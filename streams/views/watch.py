"""A terminal view of the live KPIs, read back from Prometheus (what Grafana sees).

The tables are drawn by rich; on a terminal, :func:`watch` redraws them in place
(``rich.live.Live``), elsewhere it prints one screen after another.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.views.promql import PrometheusClient, PromQLError

WINDOWS = ("5m", "30m", "hour", "day")
WIDTH = 120
"""Columns of a screen printed off a terminal."""

Query = Callable[[str, str], dict[str, float]]


def screen(
    client: PrometheusClient, channels: tuple[str, ...], at: float | None = None
) -> RenderableType:
    """One screen of KPIs as rich tables, as Prometheus had them at ``at`` (epoch s; now)."""

    def by(promql: str, label: str) -> dict[str, float]:
        return {s.labels.get(label, ""): s.value for s in client.query(promql, at)}

    shown_at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    title = Text(f"shop KPIs  {shown_at}  (event time; from Prometheus)", style="bold")
    return Group(title, _traffic(by, channels), _today(by), _ops(by))


def _num(values: dict[str, float], key: str, fmt: str = ",.0f") -> str:
    return format(values[key], fmt) if key in values else "no data"


def _traffic(by: Query, channels: tuple[str, ...]) -> Table:
    """PV and UV per channel in the rolling and running windows."""
    pv = {w: by(f'shop_page_views_by_channel{{window="{w}"}}', "channel") for w in WINDOWS}
    uv = {w: by(f'shop_unique_visitors_by_channel{{window="{w}"}}', "channel") for w in WINDOWS}
    total_pv, total_uv = by("shop_page_views", "window"), by("shop_unique_visitors", "window")
    table = Table(title="traffic", title_justify="left", show_footer=True)
    table.add_column("channel", footer="all")
    for w in WINDOWS:
        table.add_column(f"PV {w}", footer=_num(total_pv, w), justify="right")
        table.add_column(f"UV {w}", footer=_num(total_uv, w), justify="right")
    for channel in channels:
        cells = [_num(by_w, channel) for w in WINDOWS for by_w in (pv[w], uv[w])]
        table.add_row(channel, *(c if c != "no data" else "0" for c in cells))
    return table


def _today(by: Query) -> Table:
    """The figures of the day so far, and customer service now."""
    day, hour = 'window="day"', 'window="hour"'
    figures = [
        ("GMV today (yuan)", by(f"shop_gmv_yuan{{{day}}}", "window"), ",.2f"),
        ("paid orders today", by(f"shop_orders_paid{{{day}}}", "window"), ",.0f"),
        ("paying buyers today", by(f"shop_paying_visitors{{{day}}}", "window"), ",.0f"),
        ("AOV (yuan)", by(f"shop_aov_per_buyer_yuan{{{day}}}", "window"), ",.2f"),
        ("payment conversion", by(f"shop_payment_conversion{{{day}}}", "window"), ".2%"),
        ("orders / visitor", by(f"shop_orders_per_visitor{{{day}}}", "window"), ".2%"),
        ("跳失率 live, today", by(f"shop_live_bounce_rate{{{day}}}", "window"), ".1%"),
        ("跳失率 live, this hour", by(f"shop_live_bounce_rate{{{hour}}}", "window"), ".1%"),
        ("bounce rate (visits)", by(f"shop_bounce_rate{{{day}}}", "window"), ".1%"),
        ("PV/UV", by(f"shop_pv_per_uv{{{day}}}", "window"), ".2f"),
        ("customers waiting", by("shop_cs_waiting_customers", ""), ",.0f"),
        ("longest wait (s)", by("shop_cs_longest_wait_seconds", ""), ",.0f"),
        ("first response SLA", by(f"shop_cs_first_response_sla_share{{{day}}}", "window"), ".1%"),
    ]
    table = Table(title="today", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, values, fmt in figures:
        key = next(iter(values), None)
        table.add_row(name, _num(values, key, fmt) if key is not None else "no data")
    return table


def _ops(by: Query) -> Table:
    """Events consumed and rejected, and how far each topic's watermark lags."""
    rows = {
        "consumed": (by("sum by (topic) (shop_events_consumed_total)", "topic"), ",.0f"),
        "rejected": (by("sum by (reason) (shop_events_rejected_total)", "reason"), ",.0f"),
        "watermark delay s": (
            by("max by (topic) (shop_watermark_delay_seconds)", "topic"),
            ",.1f",
        ),
    }
    table = Table(title="pipeline", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("values")
    for name, (values, fmt) in rows.items():
        shown = ", ".join(f"{k}={v:{fmt}}" for k, v in sorted(values.items())) or "none"
        table.add_row(name, shown)
    return table


def render(client: PrometheusClient, channels: tuple[str, ...], at: float | None = None) -> str:
    """:func:`screen` as plain text (no colours), :data:`WIDTH` columns wide."""
    buffer = io.StringIO()
    Console(file=buffer, width=WIDTH, color_system=None).print(screen(client, channels, at))
    return buffer.getvalue()


def watch(
    client: PrometheusClient,
    channels: tuple[str, ...],
    interval_s: float,
    iterations: int | None = None,
    out: TextIO = sys.stdout,
    at: float | None = None,
) -> None:
    """Redraw every ``interval_s`` until interrupted (or ``iterations`` screens).

    With ``at`` (epoch seconds), each screen is that past moment's.
    """

    def current() -> RenderableType:
        try:
            return screen(client, channels, at)
        except PromQLError as exc:
            return Text(f"waiting for Prometheus: {exc}")

    if out.isatty() and iterations != 1:
        with Live(current(), console=Console(file=out), auto_refresh=False) as live:
            shown = 1
            while iterations is None or shown < iterations:
                time.sleep(interval_s)
                live.update(current(), refresh=True)
                shown += 1
        return
    console = Console(file=out, width=WIDTH, color_system=None)
    shown = 0
    while iterations is None or shown < iterations:
        console.print(current())
        out.flush()
        shown += 1
        if iterations is None or shown < iterations:
            time.sleep(interval_s)
