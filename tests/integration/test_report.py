"""The weekly operations review on a replayed week, against the generator's ground truth."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from loadtest.shop_generator import flush_events, generate_shop
from tests.integration.clock import Clock
from tests.integration.conftest import ROOT, Stack, kpi_env, run_kpi
from tests.integration.kpi_compare import MINUTE_MS

pytestmark = [pytest.mark.integration, pytest.mark.clock]
ZONE = ZoneInfo("Asia/Shanghai")


def test_weekly_report_of_a_replayed_week_matches_the_truth(
    stack: Stack, clock: Clock, tmp_path: Path
) -> None:
    today = datetime.fromtimestamp(clock.now(), ZONE)
    monday = (today - timedelta(days=today.weekday() + 7)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    monday = datetime(monday.year, monday.month, monday.day, tzinfo=ZONE)
    start_ms = int(monday.timestamp() * 1000)
    traffic = generate_shop(
        seed=31, start_ms=start_ms, duration_s=7 * 86_400 - 3_600, visitors=3_000
    )
    truth = traffic.truth
    flush_at = traffic.last_ms + 31 * MINUTE_MS
    assert flush_at <= clock.now_ms(), "run again 31 minutes after the week ended"
    flush = flush_events(31, flush_at, 1, truth)
    logs = tmp_path / "logs"
    logs.mkdir()
    for kind, messages in traffic.messages.items():
        values = [v for _, v in messages] + (
            [v for _, _, v in flush] if kind == "clickstream" else []
        )
        (logs / f"{kind}.jsonl").write_bytes(b"\n".join(values) + b"\n")
    env = kpi_env(stack, clock, KPI_SCORECARD_FILE=str(ROOT / "ops" / "scorecard.example.toml"))
    year, week, _ = monday.isocalendar()
    # The end of the replayed week closes its last visits (the flush's too), whenever it ran.
    truth.end_input()
    for args in (
        ["replay", "--close-at-end", str(logs)],
        ["report", "--week", f"{year}-W{week:02d}", "--out", str(tmp_path / "out")],
    ):
        run_kpi(env, *args)
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<svg" in html and "Weekly operations review" in html

    w = int(monday.timestamp())

    def c(name: str, dim: str = "", value: str = "") -> int:
        return truth.counter("w", w, name, dim, value)

    def this(section: str, title: str) -> float:
        got = data[section][title]["this_week"]
        assert got is not None, title
        return float(got)

    assert this("traffic", "PV") == c("pv")
    assert this("traffic", "sessions") == c("sessions")
    assert this("traffic", "bounce rate") == pytest.approx(c("bounces") / c("sessions_closed"))
    assert abs(this("traffic", "UV") - truth.distinct("w", w, "uv")) <= 0.02 * truth.distinct(
        "w", w, "uv"
    )
    assert this("orders", "orders paid") == c("orders_paid")
    assert this("orders", "GMV (yuan)") == pytest.approx(c("gmv_cents") / 100)
    payers, uv = truth.distinct("w", w, "payers"), truth.distinct("w", w, "uv")
    assert this("orders", "payment conversion") == pytest.approx(payers / uv, rel=0.045)
    assert this("members", "registrations") == c("registrations")
    expected_repeat = truth.repeat_distribution("w", w)
    got_repeat = {int(k.rstrip("+")): v for k, v in data["repeat_purchase"].items()}
    assert got_repeat == {k: float(v) for k, v in expected_repeat.items()}
    for row in data["channels"]:
        assert row["PV"] == c("pv", "channel", row["channel"]), row
    views, exits = truth.ranking("w", w, "page_views"), truth.ranking("w", w, "page_exits")
    rates = sorted(((exits[p] / n, p) for p, n in views.items() if n >= 20), reverse=True)[:20]
    assert [r["value"] for r in data["exit_pages"]] == pytest.approx([rate for rate, _ in rates])
    assert this("service", "response avg (s)") == pytest.approx(
        c("cs_response_ms") / 1000 / c("cs_responses")
    )
    assert data["scorecard"]["total"] is not None
    assert data["scorecard"]["items"]["teamwork"] == 5  # entered in the scorecard file
