"""A terminal view of the live KPIs, read back from Prometheus (what Grafana sees)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from streams.views.promql import PrometheusClient, PromQLError

WINDOWS = ("5m", "30m", "hour", "day")


def render(client: PrometheusClient, channels: tuple[str, ...], at: float | None = None) -> str:
    """One screen of KPIs as text, as Prometheus had them at ``at`` (epoch s; default now)."""

    def by(promql: str, label: str) -> dict[str, float]:
        return {s.labels.get(label, ""): s.value for s in client.query(promql, at)}

    def num(values: dict[str, float], key: str, fmt: str = ",.0f") -> str:
        return format(values[key], fmt) if key in values else "no data"

    pv = {w: by(f'shop_page_views_by_channel{{window="{w}"}}', "channel") for w in WINDOWS}
    uv = {w: by(f'shop_unique_visitors_by_channel{{window="{w}"}}', "channel") for w in WINDOWS}
    total_pv = by("shop_page_views", "window")
    total_uv = by("shop_unique_visitors", "window")
    shown_at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    lines = [f"shop KPIs  {shown_at}  (event time; from Prometheus)", ""]
    header = f"{'':<12}" + "".join(f"{'PV ' + w:>12}{'UV ' + w:>10}" for w in WINDOWS)
    lines.append(header)
    for channel in channels:
        lines.append(
            f"{channel:<12}"
            + "".join(
                f"{pv[w].get(channel, 0):>12,.0f}{uv[w].get(channel, 0):>10,.0f}" for w in WINDOWS
            )
        )
    lines += [
        "-" * len(header),
        f"{'all':<12}" + "".join(f"{num(total_pv, w):>12}{num(total_uv, w):>10}" for w in WINDOWS),
        "",
    ]
    today = 'window="day"'
    figures = [
        ("GMV today (yuan)", by(f"shop_gmv_yuan{{{today}}}", "window"), ",.2f"),
        ("paid orders today", by(f"shop_orders_paid{{{today}}}", "window"), ",.0f"),
        ("paying buyers today", by(f"shop_paying_visitors{{{today}}}", "window"), ",.0f"),
        ("AOV (yuan)", by(f"shop_aov_per_buyer_yuan{{{today}}}", "window"), ",.2f"),
        ("payment conversion", by(f"shop_payment_conversion{{{today}}}", "window"), ".2%"),
        ("orders / visitor", by(f"shop_orders_per_visitor{{{today}}}", "window"), ".2%"),
        ("bounce rate", by(f"shop_bounce_rate{{{today}}}", "window"), ".1%"),
        ("PV/UV", by(f"shop_pv_per_uv{{{today}}}", "window"), ".2f"),
        ("customers waiting", by("shop_cs_waiting_customers", ""), ",.0f"),
        ("longest wait (s)", by("shop_cs_longest_wait_seconds", ""), ",.0f"),
        ("first response SLA", by(f"shop_cs_first_response_sla_share{{{today}}}", "window"), ".1%"),
    ]
    for title, values, fmt in figures:
        key = next(iter(values), None)
        lines.append(f"{title:<22} {num(values, key, fmt) if key is not None else 'no data'}")
    lines.append("")
    ops = {
        "consumed": (by("sum by (topic) (shop_events_consumed_total)", "topic"), ",.0f"),
        "rejected": (by("sum by (reason) (shop_events_rejected_total)", "reason"), ",.0f"),
        "watermark delay s": (
            by("max by (topic) (shop_watermark_delay_seconds)", "topic"),
            ",.1f",
        ),
    }
    for name, (values, fmt) in ops.items():
        shown = ", ".join(f"{k}={v:{fmt}}" for k, v in sorted(values.items())) or "none"
        lines.append(f"{name:<22} {shown}")
    return "\n".join(lines)


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
    shown = 0
    while iterations is None or shown < iterations:
        try:
            screen = render(client, channels, at)
        except PromQLError as exc:
            screen = f"waiting for Prometheus: {exc}"
        clear = "\x1b[2J\x1b[H" if out.isatty() else ""
        out.write(clear + screen + "\n")
        out.flush()
        shown += 1
        if iterations is None or shown < iterations:
            time.sleep(interval_s)
