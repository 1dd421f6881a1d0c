"""The funnel's cart-to-order step stays within 100 % when orders skip the cart (by hand)."""

from __future__ import annotations

from streams.common.keys import ANY, CART_OR_ORDER, field
from streams.kpi.formulas import BY_NAME, WindowFigures, cart_orderers, orderers_without_cart


def figures(carters: int, orderers: int, either: int) -> WindowFigures:
    distinct = {
        field("carters", ANY, ANY): carters,
        field("orderers", ANY, ANY): orderers,
        field(CART_OR_ORDER, ANY, ANY): either,
    }
    return WindowFigures({}, distinct)


def test_orders_without_a_cart_are_left_out_of_the_step() -> None:
    # 100 visitors added to a cart, 40 of them ordered; 135 more ordered with no cart.
    f = figures(carters=100, orderers=175, either=235)
    assert cart_orderers(f) == 40
    assert BY_NAME["funnel_order_rate"].value(f) == 0.4  # was 175 / 100 = 175 %
    assert orderers_without_cart(f) == 135


def test_estimates_off_by_the_hyperloglog_error_stay_in_range() -> None:
    # Counts a little off: the union smaller than the larger set, or than their sum.
    assert cart_orderers(figures(carters=100, orderers=100, either=98)) == 100
    assert BY_NAME["funnel_order_rate"].value(figures(100, 100, 98)) == 1.0
    assert cart_orderers(figures(carters=50, orderers=50, either=103)) == 0
    assert orderers_without_cart(figures(carters=100, orderers=3, either=99)) == 0


def test_no_union_read_no_figure() -> None:
    assert cart_orderers(figures(10, 10, 0)) == 0
    assert BY_NAME["funnel_order_rate"].value(figures(10, 10, 0)) is None
    assert BY_NAME["funnel_order_rate"].value(figures(0, 0, 0)) is None
