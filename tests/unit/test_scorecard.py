"""Scorecard items against hand-computed values, including the edge cases."""

from __future__ import annotations

import pytest

from streams.kpi.formulas import WindowFigures
from streams.kpi.scorecard import ITEMS, ScorecardError, Targets, parse, score, total

FULL = Targets(
    gmv_target=100_000,
    order_growth_target=0.2,
    uv_target=1_000,
    pv_target=5_000,
    conversion_target=0.35,
    complaint_handling_target_seconds=600,
    campaign_participation_target=0.2,
    campaign_roi_target=4.0,
    data_analysis=4,
    teamwork=5,
)


def figures(**counters: int) -> WindowFigures:
    distinct = {"uv|_all=_all": counters.pop("uv", 0)}
    return WindowFigures(dict(counters), distinct)


CURRENT = figures(
    uv=800,
    pv=4_000,
    gmv_cents=5_000_000,
    orders_paid=110,
    orders_created=200,
    good_reviews=45,
    reviews=50,
    complaint_handling_ms=3_000_000,
    complaints_timed=10,
    complaints_satisfied=6,
    complaints_resolved=8,
    **{"pv|page_type=campaign": 1_000},
    **{"gmv_cents|campaign=double11": 1_000_000, "spend_cents|campaign=double11": 500_000},
)
PREVIOUS = figures(orders_paid=100)


def by_item(
    targets: Targets, current: WindowFigures = CURRENT, previous: WindowFigures = PREVIOUS
) -> dict[str, float | None]:
    return {line.item: line.score for line in score(current, previous, targets)}


def test_every_item_by_hand() -> None:
    got = by_item(FULL)
    assert got["sales_completion"] == pytest.approx(20 * 50_000 / 100_000)  # 10
    assert got["order_growth"] == pytest.approx(10 * 0.1 / 0.2)  # growth 10 % of 20 %: 5
    assert got["uv"] == pytest.approx(8 * 800 / 1_000)  # 6.4
    assert got["pv"] == pytest.approx(7 * 4_000 / 5_000)  # 5.6
    assert got["conversion"] == pytest.approx(15 * (200 / 800) / 0.35)  # 25 % of 35 %
    assert got["good_review_rate"] == pytest.approx(5 * 0.9)
    assert got["complaint_timeliness"] == 2  # 300 s average <= 600 s
    assert got["complaint_satisfaction"] == pytest.approx(3 * 6 / 8)
    assert got["campaign_participation"] == 10  # 25 % >= 20 %: capped
    assert got["campaign_roi"] == pytest.approx(10 * 2.0 / 4.0)
    assert (got["data_analysis"], got["teamwork"]) == (4, 5)
    lines = score(CURRENT, PREVIOUS, FULL)
    assert total(lines) == pytest.approx(
        10 + 5 + 6.4 + 5.6 + 15 * 0.25 / 0.35 + 4.5 + 2 + 2.25 + 10 + 5 + 4 + 5
    )
    assert sum(points for _, points, _ in ITEMS) == 100


def test_over_achievement_is_capped() -> None:
    rich = figures(uv=5_000, pv=90_000, gmv_cents=90_000_000, orders_paid=500, orders_created=4_000)
    got = by_item(FULL, rich, PREVIOUS)
    assert (got["sales_completion"], got["uv"], got["pv"], got["conversion"]) == (20, 8, 7, 15)
    assert got["order_growth"] == 10


def test_missing_targets_and_zero_denominators_are_no_data() -> None:
    got = by_item(Targets(), figures(), figures())
    assert all(value is None for value in got.values())
    assert total(score(figures(), figures(), Targets())) == 0


def test_slow_complaints_and_falling_orders() -> None:
    slow = figures(uv=10, complaint_handling_ms=9_000_000, complaints_timed=10, orders_paid=50)
    got = by_item(FULL, slow, PREVIOUS)
    assert got["complaint_timeliness"] == 1
    assert got["order_growth"] is None  # negative growth scores 0, shown as no data


def test_participation_without_a_target_is_proportional() -> None:
    got = by_item(Targets(), CURRENT, PREVIOUS)
    assert got["campaign_participation"] == pytest.approx(10 * 0.25)
    assert got["campaign_roi"] is None


def test_file_validation_names_period_and_key() -> None:
    assert parse({"week": {"gmv_target": 1e6, "teamwork": 3}})["week"].teamwork == 3
    for document, message in [
        ({"year": {}}, "unknown section"),
        ({"week": {"gmv": 1}}, r"\[week\] unknown key"),
        ({"day": {"uv_target": "many"}}, r"\[day\] uv_target must be a number"),
        ({"day": {"uv_target": -1}}, "must not be negative"),
        ({"month": {"teamwork": 6}}, "teamwork is at most 5 points"),
    ]:
        with pytest.raises(ScorecardError, match=message):
            parse(document)


def test_the_example_file_is_valid() -> None:
    from pathlib import Path

    from streams.kpi.scorecard import load

    targets = load(Path(__file__).resolve().parents[2] / "ops" / "scorecard.example.toml")
    assert targets["week"].gmv_target == 300_000 and targets["week"].teamwork == 5
