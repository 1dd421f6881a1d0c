"""The catalogue of stored KPI components and how each is exported.

One entry per counter, distinct set and ranking the aggregators write. The
exporter, ``docs/metrics.md`` and the tests read this list, so a stored
component is exported under one documented name. Amounts are stored in cents and
exported in yuan (``*_yuan``), durations stored in milliseconds and exported in
seconds (``*seconds*``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Component:
    """A stored KPI component and its exported metric."""

    name: str  # name in Redis (counter field or distinct/ranking name)
    metric: str  # exported metric name (without the shop_ prefix)
    help: str
    dims: tuple[str, ...] = ()  # dimensions stored besides the total

    @property
    def divisor(self) -> int:
        """Stored integers (cents, milliseconds) per exported unit (yuan, seconds).

        Exported values are divided by it, not multiplied by its inverse: an integer
        divided by 100 is the double nearest the exact decimal, which prints as it
        (``5944263 / 100`` is ``59442.63``; ``5944263 * 0.01`` is ``59442.630000000005``).
        """
        if self.metric.endswith("_yuan"):
            return 100
        if "seconds" in self.metric:
            return 1000
        return 1


C = Component
CH, CA, PT, DV = "channel", "campaign", "page_type", "device"

COUNTERS: tuple[Component, ...] = (
    C("pv", "page_views", "PV 浏览量: page views.", (CH, PT, DV, CA)),
    C("clicks", "clicks", "Clicks on page elements.", (PT, CA)),
    C("cart_adds", "cart_adds", "Units added to carts.", ()),
    C("ad_impressions", "ad_impressions", "Ad impressions (events and cost reports).", (CH, CA)),
    C("registrations", "registrations", "New members (registrations).", (CH,)),
    C("logins", "logins", "Member logins.", ()),
    C("sessions", "sessions", "Sessions started (30 min inactivity cuts a session).", (CH, DV)),
    C("ad_landings", "ad_landings", "Sessions that started from the ads channel.", (CA,)),
    C("sessions_closed", "sessions_closed", "Sessions ended, by their start time.", (CH,)),
    C("session_views", "session_views", "Page views of ended sessions.", (CH,)),
    C(
        "session_duration_ms",
        "session_duration_seconds",
        "Summed duration of ended sessions.",
        (CH,),
    ),
    C("bounces", "bounces", "Ended sessions with exactly one page view.", (CH,)),
    C("exits", "exits", "Last page views of ended sessions.", (PT,)),
    C("time_on_page_ms", "time_on_page_seconds", "Summed time on page (to the next view).", (PT,)),
    C(
        "time_on_page_views",
        "time_on_page_views",
        "Page views with a measured time on page.",
        (PT,),
    ),
    C("orders_created", "orders_created", "Orders placed.", (CH, CA)),
    C("orders_paid", "orders_paid", "Orders paid.", (CH, CA)),
    C("orders_cancelled", "orders_cancelled", "Orders cancelled.", (CH, CA)),
    C("orders_refunded", "orders_refunded", "Orders refunded or returned.", (CH, CA)),
    C("orders_returned", "orders_returned", "Refunds with goods returned.", ()),
    C("gmv_cents", "gmv_yuan", "GMV 成交额: paid amount, at payment time.", (CH, CA)),
    C("refund_cents", "refunds_yuan", "Refunded amount, at refund time.", (CH, CA)),
    C("units_sold", "units_sold", "Units in paid orders.", ()),
    C("reviews", "reviews", "Order reviews.", ()),
    C("good_reviews", "good_reviews", "Reviews with 4 or 5 stars.", ()),
    C("cogs_cents", "cogs_yuan", "Cost of goods sold (order lines with a cost).", ()),
    C("stock_value_cents", "stock_snapshot_value_yuan", "Summed values of stock snapshots.", ()),
    C("stock_snapshots", "stock_snapshots", "Stock snapshots received.", ()),
    C("spend_cents", "spend_yuan", "Marketing spend from cost reports.", (CH, CA)),
    C("cs_conversations", "cs_conversations", "Customer-service conversations started.", ()),
    C("cs_conversations_closed", "cs_conversations_closed", "Conversations closed.", ()),
    C("cs_customer_messages", "cs_customer_messages", "Customer messages.", ()),
    C("cs_bot_messages", "cs_bot_messages", "Bot replies (not responses).", ()),
    C("cs_responses", "cs_responses", "Agent responses to a waiting customer.", ()),
    C("cs_response_ms", "cs_response_seconds_total", "Summed response time.", ()),
    C("cs_responses_within_sla", "cs_responses_within_sla", "Responses within the SLA.", ()),
    C("cs_first_responses", "cs_first_responses", "First agent responses.", ()),
    C("cs_first_response_ms", "cs_first_response_seconds_total", "Summed first response time.", ()),
    C(
        "cs_first_responses_within_sla",
        "cs_first_responses_within_sla",
        "First responses within the SLA.",
        (),
    ),
    C("complaints_opened", "complaints_opened", "Complaints filed.", ()),
    C("complaints_resolved", "complaints_resolved", "Complaints resolved.", ()),
    C(
        "complaints_satisfied",
        "complaints_satisfied",
        "Resolved complaints, customer satisfied.",
        (),
    ),
    C("complaints_timed", "complaints_timed", "Resolved complaints whose opening was seen.", ()),
    C("complaint_handling_ms", "complaint_handling_seconds", "Summed complaint handling time.", ()),
)

DISTINCT: tuple[Component, ...] = (
    C("uv", "unique_visitors", "UV 独立访客数 (HyperLogLog).", (CH, DV, CA)),
    C("unique_pv", "unique_page_views", "Distinct (visitor, page) pairs; business days only.", ()),
    C("product_viewers", "product_viewers", "Visitors who viewed a product page.", (CH,)),
    C("campaign_viewers", "campaign_viewers", "Visitors who viewed a campaign page.", (CA,)),
    C("carters", "cart_visitors", "Visitors who added to cart.", (CH,)),
    C("orderers", "ordering_visitors", "Visitors who placed an order.", (CH,)),
    C("payers", "paying_visitors", "Visitors who paid (paying buyers).", (CH,)),
    C("active_members", "active_members", "Members who registered or logged in.", ()),
    C("paying_members", "paying_members", "Members who paid.", ()),
    C("warehouses", "stock_warehouses", "Warehouses that sent stock snapshots.", ()),
    C(
        "new_member_payers",
        "new_member_payers",
        "Members registered in the period who paid in it (day, week, month).",
        (),
    ),
)

RANKINGS: tuple[Component, ...] = (
    C("page_views", "top_pages_views", "Most viewed pages."),
    C("product_views", "top_products_views", "Hot products by views."),
    C("category_views", "top_categories_views", "Hot categories by views."),
    C("brand_views", "top_brands_views", "Hot brands by views."),
    C("product_clicks", "top_products_clicks", "Hot products by clicks."),
    C("category_clicks", "top_categories_clicks", "Hot categories by clicks."),
    C("brand_clicks", "top_brands_clicks", "Hot brands by clicks."),
    C("product_sales", "top_products_sales_yuan", "Best-selling products by amount."),
    C("category_sales", "top_categories_sales_yuan", "Best-selling categories by amount."),
    C("brand_sales", "top_brands_sales_yuan", "Best-selling brands by amount."),
)
EXIT_RANKING = "page_exits"
PAGE_VIEWS_RANKING = "page_views"
ORDER_SETS = frozenset({"orderers", "payers", "paying_members", "warehouses", "new_member_payers"})
"""The distinct sets the orders topic's shards write; the clickstream's write every other
one, so a reader counts each only over the shards that can hold it."""
ORDER_RANKINGS = frozenset({"product_sales", "category_sales", "brand_sales"})
"""The rankings the orders topic's shards write; the clickstream's write every other one
(and :data:`EXIT_RANKING`), so a reader looks each up only where it can be."""
