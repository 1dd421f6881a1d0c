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
