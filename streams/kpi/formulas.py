"""KPI formulas over one window's stored components: pure, no I/O.

Every ratio returns ``None`` when it is undefined (zero or negative
denominator, negative numerator), which the exporter turns into *no series*:
a dashboard shows "no data", never NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streams.common.keys import ANY, REPEAT_FIELD, REPEAT_MAX, field


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when that is not a meaningful figure."""
    if denominator <= 0 or numerator < 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class WindowFigures:
    """The stored components of one window, summed over shards."""

    counters: Mapping[str, int]
    distinct: Mapping[str, int]

    def c(self, name: str, dimension: str = "", value: str = "") -> int:
        """A counter (total, or one dimension value)."""
        return self.counters.get(field(name, dimension, value), 0)

    def d(self, name: str, dimension: str = ANY, value: str = ANY) -> int:
        """A distinct count (overall, or one dimension value)."""
        return self.distinct.get(field(name, dimension, value), 0)

    def dim_sum(self, name: str, dimension: str) -> int:
        """Sum of a counter over every value of one dimension (e.g. all campaigns)."""
        prefix = field(name, dimension, "")
        return sum(v for k, v in self.counters.items() if k.startswith(prefix))

    def repeat_distribution(self) -> dict[int, int]:
        """Buyers by paid orders in the window, 1 .. REPEAT_MAX (the last bin is "or more")."""
        return {n: self.c(REPEAT_FIELD, "orders", str(n)) for n in range(1, REPEAT_MAX + 1)}


def repeat_rate(distribution: Mapping[int, int]) -> float | None:
    """Share of buyers with two or more paid orders."""
    buyers = sum(distribution.values())
    return ratio(sum(n for orders, n in distribution.items() if orders >= 2), buyers)


def net_gmv_cents(f: WindowFigures) -> int:
    """GMV minus refunds (may be negative in a window with old orders refunded)."""
    return f.c("gmv_cents") - f.c("refund_cents")


def stock_turnover(f: WindowFigures) -> float | None:
    """库存周转率: COGS / average stock value.

    Each snapshot is one warehouse's stock; the average stock is the mean
    snapshot value times the number of warehouses (warehouses report at the same
    cadence).
    """
    snapshots = f.c("stock_snapshots")
    if snapshots <= 0:
        return None
    average_stock = f.c("stock_value_cents") / snapshots * f.d("warehouses")
    return ratio(f.c("cogs_cents"), average_stock)


def sales_completion(gmv_cents: int, target_yuan: float) -> float | None:
    """销售额完成率: GMV / target GMV; no data without a positive target."""
    return ratio(gmv_cents / 100, target_yuan)


def growth(current: float, previous: float) -> float | None:
    """(current - previous) / previous; undefined without a previous figure."""
    if previous <= 0:
        return None
    return (current - previous) / previous


Formula = Callable[[WindowFigures], float | None]

RATIOS: dict[str, tuple[str, Formula]] = {
    "pv_per_uv": ("PV/UV 人均浏览量.", lambda f: ratio(f.c("pv"), f.d("uv"))),
    "bounce_rate": (
        "跳失率: one-view sessions / ended sessions.",
        lambda f: ratio(f.c("bounces"), f.c("sessions_closed")),
    ),
    "pages_per_session": (
        "Page views per ended session.",
        lambda f: ratio(f.c("session_views"), f.c("sessions_closed")),
    ),
    "session_duration_avg_seconds": (
        "Average duration of ended sessions.",
        lambda f: _seconds(ratio(f.c("session_duration_ms"), f.c("sessions_closed"))),
    ),
    "time_on_page_avg_seconds": (
        "页面停留时间: average time on page.",
        lambda f: _seconds(ratio(f.c("time_on_page_ms"), f.c("time_on_page_views"))),
    ),
    "registration_conversion": (
        "New members / UV.",
        lambda f: ratio(f.c("registrations"), f.d("uv")),
    ),
    "member_visitor_ratio": (
        "Active members / UV.",
        lambda f: ratio(f.d("active_members"), f.d("uv")),
    ),
    "order_conversion": (
        "下单转化率: visitors who ordered / UV.",
        lambda f: ratio(f.d("orderers"), f.d("uv")),
    ),
    "payment_conversion": (
        "付款转化率: visitors who paid / UV.",
        lambda f: ratio(f.d("payers"), f.d("uv")),
    ),
    "orders_per_visitor": (
        "订单量/访客数: orders placed / UV (target 35%).",
        lambda f: ratio(f.c("orders_created"), f.d("uv")),
    ),
    "funnel_product_rate": (
        "Funnel: product viewers / visitors.",
        lambda f: ratio(f.d("product_viewers"), f.d("uv")),
    ),
    "funnel_cart_rate": (
        "Funnel: cart visitors / product viewers.",
        lambda f: ratio(f.d("carters"), f.d("product_viewers")),
    ),
    "funnel_order_rate": (
        "Funnel: ordering visitors / cart visitors.",
        lambda f: ratio(f.d("orderers"), f.d("carters")),
    ),
    "funnel_pay_rate": (
        "Funnel: paying visitors / ordering visitors.",
        lambda f: ratio(f.d("payers"), f.d("orderers")),
    ),
    "aov_per_buyer_yuan": (
        "客单价: GMV / paying buyers.",
        lambda f: _yuan(ratio(f.c("gmv_cents"), f.d("payers"))),
    ),
    "aov_per_order_yuan": (
        "GMV / paid orders.",
        lambda f: _yuan(ratio(f.c("gmv_cents"), f.c("orders_paid"))),
    ),
    "return_rate": (
        "退货率: refunded or returned orders / paid orders.",
        lambda f: ratio(f.c("orders_refunded"), f.c("orders_paid")),
    ),
    "new_member_purchase_ratio": (
        "Members registered in the period who paid / registrations in the period.",
        lambda f: ratio(f.d("new_member_payers"), f.c("registrations")),
    ),
    "member_purchase_ratio": (
        "Paying members / active members.",
        lambda f: ratio(f.d("paying_members"), f.d("active_members")),
    ),
    "campaign_participation": (
        "活动参与度: campaign page views / page views.",
        lambda f: ratio(f.c("pv", "page_type", "campaign"), f.c("pv")),
    ),
    "campaign_gmv_share": (
        "活动成交额比例: campaign GMV / GMV.",
        lambda f: ratio(f.dim_sum("gmv_cents", "campaign"), f.c("gmv_cents")),
    ),
    "campaign_order_share": (
        "Campaign paid orders / paid orders.",
        lambda f: ratio(f.dim_sum("orders_paid", "campaign"), f.c("orders_paid")),
    ),
    "campaign_roi": (
        "投入产出比: campaign GMV / campaign spend.",
        lambda f: ratio(f.dim_sum("gmv_cents", "campaign"), f.dim_sum("spend_cents", "campaign")),
    ),
    "uv_cost_yuan": (
        "UV平均获取成本: spend / UV.",
        lambda f: _yuan(ratio(f.c("spend_cents"), f.d("uv"))),
    ),
    "ad_arrival_rate": (
        "到达率: ad landings / ad impressions.",
        lambda f: ratio(f.c("ad_landings"), f.c("ad_impressions")),
    ),
    "campaign_click_rate": (
        "平均点击率: campaign-page clicks / campaign-page UV.",
        lambda f: ratio(f.c("clicks", "page_type", "campaign"), f.d("campaign_viewers")),
    ),
    "cs_first_response_avg_seconds": (
        "首次响应时间: average first response.",
        lambda f: _seconds(ratio(f.c("cs_first_response_ms"), f.c("cs_first_responses"))),
    ),
    "cs_response_avg_seconds": (
        "Average response time.",
        lambda f: _seconds(ratio(f.c("cs_response_ms"), f.c("cs_responses"))),
    ),
    "cs_sla_share": (
        "Responses within the SLA / responses.",
        lambda f: ratio(f.c("cs_responses_within_sla"), f.c("cs_responses")),
    ),
    "cs_first_response_sla_share": (
        "First responses within the SLA / first responses.",
        lambda f: ratio(f.c("cs_first_responses_within_sla"), f.c("cs_first_responses")),
    ),
    "complaint_handling_avg_seconds": (
        "Complaint timeliness: average handling time.",
        lambda f: _seconds(ratio(f.c("complaint_handling_ms"), f.c("complaints_timed"))),
    ),
    "complaint_satisfaction": (
        "Satisfied complaints / resolved complaints.",
        lambda f: ratio(f.c("complaints_satisfied"), f.c("complaints_resolved")),
    ),
    "good_review_rate": (
        "好评率: good reviews / reviews.",
        lambda f: ratio(f.c("good_reviews"), f.c("reviews")),
    ),
    "stock_turnover": ("库存周转率: cost of goods sold / average stock value.", stock_turnover),
    "repeat_rate": (
        "复购率: buyers with two or more paid orders / buyers.",
        lambda f: repeat_rate(f.repeat_distribution()),
    ),
}

DimFormula = Callable[[WindowFigures, str], float | None]

CHANNEL_RATIOS: dict[str, tuple[str, DimFormula]] = {
    "order_conversion": (
        "Visitors who ordered / UV, per channel.",
        lambda f, v: ratio(f.d("orderers", "channel", v), f.d("uv", "channel", v)),
    ),
    "payment_conversion": (
        "Visitors who paid / UV, per channel.",
        lambda f, v: ratio(f.d("payers", "channel", v), f.d("uv", "channel", v)),
    ),
    "orders_per_visitor": (
        "Orders placed / UV, per channel.",
        lambda f, v: ratio(f.c("orders_created", "channel", v), f.d("uv", "channel", v)),
    ),
    "bounce_rate": (
        "Bounce rate per channel.",
        lambda f, v: ratio(f.c("bounces", "channel", v), f.c("sessions_closed", "channel", v)),
    ),
    "pages_per_session": (
        "Pages per visit, per channel.",
        lambda f, v: ratio(
            f.c("session_views", "channel", v), f.c("sessions_closed", "channel", v)
        ),
    ),
    "session_duration_avg_seconds": (
        "Session duration per channel.",
        lambda f, v: _seconds(
            ratio(f.c("session_duration_ms", "channel", v), f.c("sessions_closed", "channel", v))
        ),
    ),
    "uv_cost_yuan": (
        "Spend / UV, per channel.",
        lambda f, v: _yuan(ratio(f.c("spend_cents", "channel", v), f.d("uv", "channel", v))),
    ),
}

CAMPAIGN_RATIOS: dict[str, tuple[str, DimFormula]] = {
    "campaign_roi": (
        "GMV / spend, per campaign.",
        lambda f, v: ratio(f.c("gmv_cents", "campaign", v), f.c("spend_cents", "campaign", v)),
    ),
    "uv_cost_yuan": (
        "Spend / UV, per campaign.",
        lambda f, v: _yuan(ratio(f.c("spend_cents", "campaign", v), f.d("uv", "campaign", v))),
    ),
    "ad_arrival_rate": (
        "Ad landings / ad impressions, per campaign.",
        lambda f, v: ratio(f.c("ad_landings", "campaign", v), f.c("ad_impressions", "campaign", v)),
    ),
}

PAGE_TYPE_RATIOS: dict[str, tuple[str, DimFormula]] = {
    "time_on_page_avg_seconds": (
        "Average time on page, per page type.",
        lambda f, v: _seconds(
            ratio(f.c("time_on_page_ms", "page_type", v), f.c("time_on_page_views", "page_type", v))
        ),
    ),
    "exit_rate": (
        "Exits / page views, per page type.",
        lambda f, v: ratio(f.c("exits", "page_type", v), f.c("pv", "page_type", v)),
    ),
}


def exit_rates(
    views: Mapping[str, float], exits: Mapping[str, float], min_views: float, top: int
) -> list[tuple[str, float]]:
    """退出率 per page: the ``top`` highest exits / views among pages with ``min_views`` views."""
    rates = []
    for page, n in views.items():
        rate = ratio(exits.get(page, 0), n) if n >= min_views else None
        if rate is not None:
            rates.append((page, rate))
    rates.sort(key=lambda item: (-item[1], -views[item[0]], item[0]))
    return rates[:top]


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _yuan(cents: float | None) -> float | None:
    return None if cents is None else cents / 100
