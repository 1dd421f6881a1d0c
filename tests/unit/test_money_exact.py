"""Money and durations exported as their exact decimals, without binary float noise."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from streams.kpi.catalogue import COUNTERS
from streams.kpi.formulas import WindowFigures
from streams.metrics.families import _counter


def test_a_reported_noisy_total_prints_as_its_cents() -> None:
    figures = WindowFigures(Counter({"gmv_cents": 5_944_263}), {})
    assert repr(_counter(100, figures, "gmv_cents")) == "59442.63"  # not 59442.630000000005


@given(st.integers(0, 10**14), st.sampled_from([100, 1000]))
def test_any_stored_integer_prints_as_its_exact_decimal(stored: int, divisor: int) -> None:
    exported = _counter(divisor, WindowFigures(Counter({"x": stored}), {}), "x")
    assert Decimal(repr(exported)) == Decimal(stored) / divisor


def test_every_money_and_time_component_is_divided() -> None:
    divisors = {c.metric: c.divisor for c in COUNTERS}
    assert divisors["gmv_yuan"] == 100
    assert all(d == 100 for m, d in divisors.items() if m.endswith("_yuan"))
    assert all(d == 1000 for m, d in divisors.items() if "seconds" in m)
