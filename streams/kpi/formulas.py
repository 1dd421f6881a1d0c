"""KPI formulas over one window's stored components: pure, no I/O.

Every ratio returns ``None`` when it is undefined (zero or negative
denominator, negative numerator), which the exporter turns into *no series*:
a dashboard shows "no data", never NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from streams.common.keys import (
    ANY,
    CART_OR_ORDER,
    REPEAT_FIELD,
    REPEAT_MAX,
    VIEW_DEPTH_FIELD,
    VIEW_DEPTH_MAX,
    field,
)


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


def cart_orderers(f: WindowFigures) -> int:
    """Visitors who added to a cart and ordered: |carters| + |orderers| - |carters | orderers|.

    Inclusion-exclusion over the HyperLogLog counts (each about 0.8 % off), kept between 0
    and the smaller set. The cart-to-order step of the funnel divides this, not every
    orderer, by the carters, so it cannot pass 100 % when orders skip the cart.
    """
    carters, orderers = f.d("carters"), f.d("orderers")
    either = f.d(CART_OR_ORDER)
    if either <= 0:
        return 0
    return max(0, min(carters + orderers - either, carters, orderers))


def orderers_without_cart(f: WindowFigures) -> int:
    """Visitors who ordered without a cart in the window: |carters | orderers| - |carters|.

    Buy-now buttons, the app, a cart filled the day before: the orderers the funnel's
    cart-to-order step leaves out.
    """
    either = f.d(CART_OR_ORDER)
    return max(0, either - f.d("carters")) if either > 0 else 0


def visitors_by_views(f: WindowFigures) -> tuple[int, int]:
    """Visitors of the hour or day with exactly one page view, and with two or more.

    Counted exactly from each visitor's page views within the allowed lateness (0, 0 in
    other windows).
    """
    return f.c(VIEW_DEPTH_FIELD, "views", "1"), f.c(VIEW_DEPTH_FIELD, "views", str(VIEW_DEPTH_MAX))


def live_bounce_rate(f: WindowFigures) -> float | None:
    """跳失率 as Alibaba's merchant dashboard (生意参谋) shows it, live.

    Visitors so far in the hour or day who viewed exactly one page / visitors who viewed
    a page. Unlike the visit-based :data:`bounce_rate` (one-view visits / ended visits),
    it needs no visit to end, so it has a value from the first page view of the day.
    """
    one, more = visitors_by_views(f)
    return ratio(one, one + more)


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
DimFormula = Callable[[WindowFigures, str], float | None]


@dataclass(frozen=True)
class Part:
    """One side of a ratio: a stored counter or distinct set, read for a dimension value.

    ``fixed`` reads one given dimension value whatever is asked (campaign pages:
    ``("page_type", "campaign")``); ``summed`` reads the sum over every value of a
    dimension for the total (campaign GMV) and the asked value for a per-dimension figure.
    """

    name: str
    distinct: bool = False
    fixed: tuple[str, str] | None = None
    summed: str = ""

    def read(self, f: WindowFigures, dimension: str = "", value: str = "") -> int:
        """The part's figure in ``f``: total, or for one dimension value."""
        if self.fixed is not None:
            dimension, value = self.fixed
        elif self.summed and not dimension:
            return f.dim_sum(self.name, self.summed)
        if self.distinct:
            return f.d(self.name, dimension or ANY, value or ANY)
        return f.c(self.name, dimension, value)


C, D = Part, partial(Part, distinct=True)

DIVISOR = {"ratio": 1, "seconds": 1000, "yuan": 100, "per visitor": 1, "pages": 1}
"""Stored units (ms, cents) per unit: a ratio of them is divided by it (see
:attr:`~streams.kpi.catalogue.Component.divisor` for why divided)."""


@dataclass(frozen=True)
class Kpi:
    """One KPI: the exported ``shop_<name>``, its Chinese term, formula, unit, dimensions.

    The value is ``numerator / denominator`` (``None`` when undefined, see
    :func:`ratio`) times the unit's scale, or ``custom`` for the few that are not one
    ratio. ``dims`` name the per-dimension variants ``shop_<name>_by_<dim>``, computed
    from the same parts read for each dimension value; ``total`` is False for a KPI that
    exists only per dimension (exit rate per page type).
    """

    name: str
    term: str
    formula: str
    unit: str
    numerator: Part | None = None
    denominator: Part | None = None
    dims: tuple[str, ...] = ()
    total: bool = True
    custom: Formula | None = None

    @property
    def help(self) -> str:
        """Help text of the metric family: term and formula."""
        return f"{self.term}: {self.formula}." if self.term else f"{self.formula}."

    def value(self, f: WindowFigures, dimension: str = "", label: str = "") -> float | None:
        """The KPI in ``f``: the total, or for one value of one of :attr:`dims`."""
        if self.custom is not None:
            return self.custom(f)
        if self.numerator is None or self.denominator is None:
            raise ValueError(f"KPI {self.name} has neither parts nor a custom formula")
        found = ratio(
            self.numerator.read(f, dimension, label), self.denominator.read(f, dimension, label)
        )
        return None if found is None else found / DIVISOR[self.unit]


CH, CA, PT = "channel", "campaign", "page_type"
UV = D("uv")
CLOSED = C("sessions_closed")

KPIS: tuple[Kpi, ...] = (
    Kpi("pv_per_uv", "PV/UV 人均浏览量", "page views / UV", "pages", C("pv"), UV),
    Kpi(
        "bounce_rate",
        "跳失率",
        "one-view sessions / ended sessions",
        "ratio",
        C("bounces"),
        CLOSED,
        (CH,),
    ),
    Kpi(
        "live_bounce_rate",
        "跳失率 (访客)",
        "visitors who viewed exactly one page so far / visitors who viewed a page (hour, day)",
        "ratio",
        custom=live_bounce_rate,
    ),
    Kpi(
        "pages_per_session",
        "",
        "page views of ended sessions / ended sessions",
        "pages",
        C("session_views"),
        CLOSED,
        (CH,),
    ),
    Kpi(
        "session_duration_avg_seconds",
        "",
        "summed duration of ended sessions / ended sessions",
        "seconds",
        C("session_duration_ms"),
        CLOSED,
        (CH,),
    ),
    Kpi(
        "time_on_page_avg_seconds",
        "页面停留时间",
        "summed time on page / views with a measured time",
        "seconds",
        C("time_on_page_ms"),
        C("time_on_page_views"),
        (PT,),
    ),
    Kpi(
        "exit_rate",
        "退出率",
        "exits / page views",
        "ratio",
        C("exits"),
        C("pv"),
        (PT,),
        total=False,
    ),
    Kpi("registration_conversion", "", "new members / UV", "ratio", C("registrations"), UV),
    Kpi("member_visitor_ratio", "", "active members / UV", "ratio", D("active_members"), UV),
    Kpi(
        "order_conversion",
        "下单转化率",
        "visitors who ordered / UV",
        "ratio",
        D("orderers"),
        UV,
        (CH,),
    ),
    Kpi(
        "payment_conversion",
        "付款转化率",
        "visitors who paid / UV",
        "ratio",
        D("payers"),
        UV,
        (CH,),
    ),
    Kpi(
        "orders_per_visitor",
        "订单量/访客数",
        "orders placed / UV (target 35%)",
        "per visitor",
        C("orders_created"),
        UV,
        (CH,),
    ),
    Kpi(
        "funnel_product_rate",
        "",
        "funnel: product viewers / visitors",
        "ratio",
        D("product_viewers"),
        UV,
    ),
    Kpi(
        "funnel_cart_rate",
        "",
        "funnel: cart visitors / product viewers",
        "ratio",
        D("carters"),
        D("product_viewers"),
    ),
    Kpi(
        "funnel_order_rate",
        "",
        "funnel: cart visitors who ordered / cart visitors (orders without a cart apart)",
        "ratio",
        custom=lambda f: ratio(cart_orderers(f), f.d("carters")) if f.d(CART_OR_ORDER) else None,
    ),
    Kpi(
        "funnel_pay_rate",
        "",
        "funnel: paying visitors / ordering visitors",
        "ratio",
        D("payers"),
        D("orderers"),
    ),
    Kpi("aov_per_buyer_yuan", "客单价", "GMV / paying buyers", "yuan", C("gmv_cents"), D("payers")),
    Kpi("aov_per_order_yuan", "", "GMV / paid orders", "yuan", C("gmv_cents"), C("orders_paid")),
    Kpi(
        "return_rate",
        "退货率",
        "refunded or returned orders / paid orders",
        "ratio",
        C("orders_refunded"),
        C("orders_paid"),
    ),
    Kpi(
        "new_member_purchase_ratio",
        "",
        "members registered in the period who paid / registrations in the period",
        "ratio",
        D("new_member_payers"),
        C("registrations"),
    ),
    Kpi(
        "member_purchase_ratio",
        "",
        "paying members / active members",
        "ratio",
        D("paying_members"),
        D("active_members"),
    ),
    Kpi(
        "campaign_participation",
        "活动参与度",
        "campaign page views / page views",
        "ratio",
        C("pv", fixed=(PT, "campaign")),
        C("pv"),
    ),
    Kpi(
        "campaign_gmv_share",
        "活动成交额比例",
        "campaign GMV / GMV",
        "ratio",
        C("gmv_cents", summed=CA),
        C("gmv_cents"),
    ),
    Kpi(
        "campaign_order_share",
        "",
        "campaign paid orders / paid orders",
        "ratio",
        C("orders_paid", summed=CA),
        C("orders_paid"),
    ),
    Kpi(
        "campaign_roi",
        "投入产出比",
        "campaign GMV / campaign spend",
        "ratio",
        C("gmv_cents", summed=CA),
        C("spend_cents", summed=CA),
        (CA,),
    ),
    Kpi("uv_cost_yuan", "UV平均获取成本", "spend / UV", "yuan", C("spend_cents"), UV, (CH, CA)),
    Kpi(
        "ad_arrival_rate",
        "到达率",
        "ad landings / ad impressions",
        "ratio",
        C("ad_landings"),
        C("ad_impressions"),
        (CA,),
    ),
    Kpi(
        "campaign_click_rate",
        "平均点击率",
        "campaign-page clicks / campaign-page UV",
        "ratio",
        C("clicks", fixed=(PT, "campaign")),
        D("campaign_viewers"),
    ),
    Kpi(
        "cs_first_response_avg_seconds",
        "首次响应时间",
        "summed first response time / first responses",
        "seconds",
        C("cs_first_response_ms"),
        C("cs_first_responses"),
    ),
    Kpi(
        "cs_response_avg_seconds",
        "",
        "summed response time / responses",
        "seconds",
        C("cs_response_ms"),
        C("cs_responses"),
    ),
    Kpi(
        "cs_sla_share",
        "",
        "responses within the SLA / responses",
        "ratio",
        C("cs_responses_within_sla"),
        C("cs_responses"),
    ),
    Kpi(
        "cs_first_response_sla_share",
        "",
        "first responses within the SLA / first responses",
        "ratio",
        C("cs_first_responses_within_sla"),
        C("cs_first_responses"),
    ),
    Kpi(
        "complaint_handling_avg_seconds",
        "",
        "complaint timeliness: summed handling time / resolved complaints timed",
        "seconds",
        C("complaint_handling_ms"),
        C("complaints_timed"),
    ),
    Kpi(
        "complaint_satisfaction",
        "",
        "satisfied complaints / resolved complaints",
        "ratio",
        C("complaints_satisfied"),
        C("complaints_resolved"),
    ),
    Kpi(
        "good_review_rate",
        "好评率",
        "good reviews / reviews",
        "ratio",
        C("good_reviews"),
        C("reviews"),
    ),
    Kpi(
        "stock_turnover",
        "库存周转率",
        "cost of goods sold / average stock value",
        "ratio",
        custom=stock_turnover,
    ),
    Kpi(
        "repeat_rate",
        "复购率",
        "buyers with two or more paid orders / buyers",
        "ratio",
        custom=lambda f: repeat_rate(f.repeat_distribution()),
    ),
)
"""Every ratio KPI, once: the collector, the report, the scorecard and ``kpi docs`` read it."""

BY_NAME = {kpi.name: kpi for kpi in KPIS}


def _by(dimension: str) -> dict[str, tuple[str, DimFormula]]:
    return {
        kpi.name: (
            f"{kpi.help[:-1]}, per {dimension.replace('_', ' ')}.",
            partial(_dim_value, kpi, dimension),
        )
        for kpi in KPIS
        if dimension in kpi.dims
    }


def _dim_value(kpi: Kpi, dimension: str, f: WindowFigures, label: str) -> float | None:
    return kpi.value(f, dimension, label)


RATIOS: dict[str, tuple[str, Formula]] = {
    kpi.name: (kpi.help, kpi.value) for kpi in KPIS if kpi.total
}
"""Totals by metric name: (help, formula), derived from :data:`KPIS`."""
CHANNEL_RATIOS = _by(CH)
CAMPAIGN_RATIOS = _by(CA)
PAGE_TYPE_RATIOS = _by(PT)


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
