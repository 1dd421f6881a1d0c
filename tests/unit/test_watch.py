"""The terminal view: a past moment's screen, and counts printed as integers."""

from __future__ import annotations

import io
import time

from streams.views.promql import Sample
from streams.views.watch import render, watch


class FakePrometheus:
    """Answers every query with one series; records the evaluation times asked for."""

    def __init__(self) -> None:
        self.asked_at: list[float | None] = []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.asked_at.append(at)
        if "consumed" in promql:
            return [Sample({"topic": "clickstream"}, 1017.0)]
        if "watermark_delay" in promql:
            return [Sample({"topic": "clickstream"}, 2.25)]
        if promql == 'shop_live_bounce_rate{window="day"}':
            return [Sample({"window": "day"}, 0.41234)]
        if promql == 'shop_page_views_by_channel{window="5m"}':
            return [Sample({"window": "5m", "channel": "search"}, 12345.0)]
        return []


def test_a_past_moment_is_queried_and_shown() -> None:
    client = FakePrometheus()
    at = 1_700_000_000.0
    out = io.StringIO()
    watch(client, ("search", "other"), 0.0, iterations=1, out=out, at=at)  # type: ignore[arg-type]
    assert set(client.asked_at) == {at}
    screen = out.getvalue()
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) in screen.splitlines()[0]
    assert "clickstream=1,017" in screen and "1,017.0" not in screen
    assert "clickstream=2.2" in screen  # the watermark delay keeps its tenth


def test_now_is_the_default() -> None:
    client = FakePrometheus()
    render(client, ("other",))  # type: ignore[arg-type]
    assert set(client.asked_at) == {None}


def test_the_live_bounce_rate_and_counts_are_shown_in_their_rows() -> None:
    lines = render(FakePrometheus(), ("search", "other")).splitlines()  # type: ignore[arg-type]
    today = next(line for line in lines if "跳失率 live, today" in line)
    assert "41.2%" in today
    hour = next(line for line in lines if "跳失率 live, this hour" in line)
    assert "no data" in hour
    search = next(line for line in lines if "search" in line)
    assert "12,345" in search and "12,345.0" not in search
