"""Backfill: two days of replayed page views become Prometheus history, minute by minute."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from loadtest.generator import generate, write_file
from tests.integration.clock import Clock
from tests.integration.conftest import Stack, kpi_env, run_kpi

pytestmark = [pytest.mark.integration, pytest.mark.clock]


def test_two_backfilled_days_come_back_per_minute_from_promql(
    stack: Stack, clock: Clock, tmp_path: Path, measure: Callable[[str, str], None]
) -> None:
    now = int(clock.now()) // 60 * 60
    start, end = now - 49 * 3600, now - 2 * 3600  # two days, ending before the live data
    generated = generate(30_000, start * 1000, end - start, seed=3)
    log = tmp_path / "clickstream.jsonl"
    write_file(generated.messages, log)
    env = kpi_env(stack, clock, KPI_MINUTE_RETENTION_SECONDS=str(4 * 86_400))

    def kpi(*args: str) -> str:
        return run_kpi(env, *args)

    kpi("replay", str(log))
    iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    data = Path(stack.env["KPI_STACK_DIR"]) / "prometheus" / "data"
    began = time.perf_counter()
    # Samples at the middle of each minute: the "minute" window is then that whole minute.
    out = kpi(
        "backfill",
        "--from",
        iso(start + 30),
        "--to",
        iso(end),
        "--step",
        "60",
        "--metrics",
        "shop_page_views,shop_unique_visitors",
        "--out",
        str(tmp_path / "bf"),
        "--into",
        str(data),
    )
    measure(
        "backfill: seconds for two days at one-minute steps", f"{time.perf_counter() - began:.0f}"
    )
    assert "block(s)" in out
    stack.run_stack("down", "prometheus")
    stack.run_stack("up", "prometheus")

    prom = stack.prometheus()
    series = prom.query_range('shop_page_views{window="minute", job=""}', start + 30, end - 30, 60)
    assert len(series) == 1, series
    points = dict(series[0][1])
    assert len(points) == (end - start) // 60
    wrong = [
        (t, value, generated.truth.pv("m", int(t) - 30))
        for t, value in points.items()
        if value != generated.truth.pv("m", int(t) - 30)
    ]
    assert wrong == [], wrong[:10]
    assert sum(points.values()) == 30_000
    day = prom.query_range('shop_page_views{window="day", job=""}', end - 30, end - 30, 60)
    day_start = int(
        datetime.fromtimestamp(end - 30, generated_zone())
        .replace(hour=0, minute=0, second=0)
        .timestamp()
    )
    # The day so far at end - 30 s: every minute of the day up to the one holding that moment.
    so_far = sum(generated.truth.pv("m", m) for m in range(day_start, end - 30, 60))
    assert day[0][1][0][1] == so_far
    measure("backfill: minutes compared through a PromQL range query", f"{len(points):,}")


def generated_zone() -> ZoneInfo:
    return ZoneInfo("Asia/Shanghai")
