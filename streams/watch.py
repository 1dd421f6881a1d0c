"""A terminal view of the live KPIs, read back from Prometheus (what Grafana sees)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from streams.promql import PrometheusClient, PromQLError

WINDOWS = ("5m", "30m", "hour", "day")


def render(client: PrometheusClient, channels: tuple[str, ...]) -> str:
    """One screen of KPIs as text."""

    def by(promql: str, label: str) -> dict[str, float]:
        return {s.labels.get(label, ""): s.value for s in client.query(promql)}

    pv = {w: by(f'shop_page_views{{window="{w}"}}', "channel") for w in WINDOWS}
    uv = {w: by(f'shop_unique_visitors{{window="{w}"}}', "channel") for w in WINDOWS}
    uv_all = by("shop_unique_visitors_all_channels", "window")
    lines = [f"shop KPIs  {time.strftime('%Y-%m-%d %H:%M:%S')}  (event time; from Prometheus)", ""]
    header = f"{'':<12}" + "".join(f"{'PV ' + w:>12}{'UV ' + w:>10}" for w in WINDOWS)
    lines.append(header)
    for channel in channels:
        row = f"{channel:<12}" + "".join(
            f"{pv[w].get(channel, 0):>12,.0f}{uv[w].get(channel, 0):>10,.0f}" for w in WINDOWS
        )
        lines.append(row)
    total = f"{'all':<12}" + "".join(
        f"{sum(pv[w].values()):>12,.0f}{uv_all.get(w, 0):>10,.0f}" for w in WINDOWS
    )
    lines += ["-" * len(header), total, ""]
    for w in ("5m", "day"):
        visitors = uv_all.get(w, 0)
        ratio = f"{sum(pv[w].values()) / visitors:.2f}" if visitors else "no data"
        lines.append(f"PV/UV {w:<4} {ratio}")
    ops = {
        "consumed": by("sum by (topic) (shop_events_consumed_total)", "topic"),
        "rejected": by("sum by (reason) (shop_events_rejected_total)", "reason"),
        "watermark delay s": by("max by (topic) (shop_watermark_delay_seconds)", "topic"),
    }
    for name, values in ops.items():
        shown = ", ".join(f"{k}={v:,.1f}" for k, v in sorted(values.items())) or "none"
        lines.append(f"{name:<18} {shown}")
    return "\n".join(lines)


def watch(
    client: PrometheusClient,
    channels: tuple[str, ...],
    interval_s: float,
    iterations: int | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Redraw every ``interval_s`` until interrupted (or ``iterations`` screens)."""
    shown = 0
    while iterations is None or shown < iterations:
        try:
            screen = render(client, channels)
        except PromQLError as exc:
            screen = f"waiting for Prometheus: {exc}"
        clear = "\x1b[2J\x1b[H" if out.isatty() else ""
        out.write(clear + screen + "\n")
        out.flush()
        shown += 1
        if iterations is None or shown < iterations:
            time.sleep(interval_s)
