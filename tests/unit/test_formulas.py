"""KPI formulas: hand-computed values and every edge case (no NaN, no crash)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.kpi.formulas import (
    CAMPAIGN_RATIOS,
    CHANNEL_RATIOS,
    PAGE_TYPE_RATIOS,
    RATIOS,
    WindowFigures,
    exit_rates,
    growth,
    net_gmv_cents,
    ratio,
    repeat_rate,
)

EMPTY = WindowFigures({}, {})


def test_ratio_is_undefined_without_a_positive_denominator() -> None:
    assert ratio(1, 4) == 0.25
    assert ratio(0, 4) == 0.0
    assert ratio(1, 0) is None
    assert ratio(0, 0) is None
    assert ratio(1, -2) is None
    assert ratio(-1, 2) is None


def test_every_formula_on_an_empty_window_is_no_data() -> None:
    for name, (_, formula) in RATIOS.items():
        assert formula(EMPTY) is None, name
    for table in (CHANNEL_RATIOS, CAMPAIGN_RATIOS, PAGE_TYPE_RATIOS):
        for name, (_, dim_formula) in table.items():
            assert dim_formula(EMPTY, "search") is None, name


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "pv",
                "bounces",
                "sessions_closed",
                "orders_paid",
                "gmv_cents",
                "refund_cents",
                "reviews",
                "good_reviews",
                "cs_responses",
                "cs_response_ms",
                "orders_created",
                "pv|page_type=campaign",
                "gmv_cents|campaign=double11",
                "spend_cents|campaign=double11",
                "repeat_buyers|orders=1",
                "repeat_buyers|orders=2",
                "time_on_page_ms",
                "time_on_page_views",
                "clicks|page_type=campaign",
                "ad_landings",
                "ad_impressions",
            ]
        ),
        st.integers(min_value=0, max_value=10**12),
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "uv|_all=_all",
                "payers|_all=_all",
                "orderers|_all=_all",
                "carters|_all=_all",
                "product_viewers|_all=_all",
                "campaign_viewers|_all=_all",
                "uv|channel=search",
            ]
        ),
        st.integers(min_value=0, max_value=10**9),
    ),
)
def test_formulas_are_finite_or_no_data(counters: dict[str, int], distinct: dict[str, int]) -> None:
    figures = WindowFigures(counters, distinct)
    for name, (_, formula) in RATIOS.items():
        value = formula(figures)
        assert value is None or (math.isfinite(value) and value >= 0), name
    for table in (CHANNEL_RATIOS, CAMPAIGN_RATIOS, PAGE_TYPE_RATIOS):
        for name, (_, dim_formula) in table.items():
            value = dim_formula(figures, "search")
            assert value is None or (math.isfinite(value) and value >= 0), name


def test_hand_computed_window() -> None:
    f = WindowFigures(
        {
            "pv": 1_000,
            "pv|page_type=campaign": 250,
            "orders_created": 40,
            "orders_paid": 30,
            "gmv_cents": 600_000,
            "gmv_cents|campaign=double11": 150_000,
            "gmv_cents|campaign=618": 50_000,
            "spend_cents|campaign=double11": 40_000,
            "spend_cents|campaign=618": 10_000,
            "spend_cents": 80_000,
            "refund_cents": 100_000,
            "orders_refunded": 3,
            "bounces": 30,
            "sessions_closed": 120,
            "cs_first_response_ms": 90_000,
            "cs_first_responses": 4,
            "cs_responses": 10,
            "cs_responses_within_sla": 7,
            "repeat_buyers|orders=1": 18,
            "repeat_buyers|orders=2": 4,
            "repeat_buyers|orders=6": 2,
            "registrations": 20,
            "ad_landings": 15,
            "ad_impressions": 3_000,
        },
        {
            "uv|_all=_all": 400,
            "payers|_all=_all": 24,
            "orderers|_all=_all": 32,
            "new_member_payers|_all=_all": 5,
        },
    )

    def r(name: str) -> float | None:
        return RATIOS[name][1](f)

    assert r("pv_per_uv") == 2.5
    assert r("orders_per_visitor") == 0.1
    assert r("order_conversion") == 0.08
    assert r("payment_conversion") == 0.06
    assert r("aov_per_buyer_yuan") == 250.0
    assert r("aov_per_order_yuan") == 200.0
    assert r("return_rate") == 0.1
    assert r("bounce_rate") == 0.25
    assert r("campaign_participation") == 0.25
    assert r("campaign_gmv_share") == pytest.approx(200_000 / 600_000)
    assert r("campaign_roi") == 4.0
    assert r("uv_cost_yuan") == 2.0
    assert r("ad_arrival_rate") == 0.005
    assert r("cs_first_response_avg_seconds") == 22.5
    assert r("cs_sla_share") == 0.7
    assert r("repeat_rate") == pytest.approx(6 / 24)
    assert r("new_member_purchase_ratio") == 0.25
    assert CAMPAIGN_RATIOS["campaign_roi"][1](f, "618") == 5.0
    assert net_gmv_cents(f) == 500_000


def test_repeat_rate_and_growth() -> None:
    assert repeat_rate({1: 3, 2: 1}) == 0.25
    assert repeat_rate({1: 0, 2: 0}) is None
    assert growth(120, 100) == pytest.approx(0.2)
    assert growth(80, 100) == pytest.approx(-0.2)
    assert growth(5, 0) is None


def test_exit_rates_floor_order_and_cap() -> None:
    views = {"/a": 100, "/b": 19, "/c": 20, "/d": 50, "/e": 50}
    exits = {"/a": 10, "/b": 19, "/c": 10, "/d": 25, "/e": 25}
    assert exit_rates(views, exits, min_views=20, top=3) == [
        ("/d", 0.5),  # ties: more views first, then by page
        ("/e", 0.5),
        ("/c", 0.5),
    ]
    assert exit_rates(views, exits, min_views=20, top=10)[-1] == ("/a", 0.1)
    assert exit_rates({}, {}, min_views=1, top=20) == []
