"""The five dashboards, one function each, and the thresholds they colour against.

Thresholds are the service's own defaults, never numbers written again here: the
SLA and the agent cap from :class:`~streams.common.settings.Settings`, the
conversion target (orders per visitor) from the scorecard's
:class:`~streams.kpi.scorecard.Targets`. Panel titles are built from them, so a
changed default changes the colours and the titles together (after
``python -m dashboards.build``). The committed JSON follows the defaults, not a
deployment's ``KPI_*`` overrides.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as d
from grafana_foundation_sdk.models import dashboard as m

from dashboards.panels import big_stat, query, series, top_table, variable
from streams.common.settings import (
    DEFAULT_CAMPAIGNS,
    DEFAULT_CHANNELS,
    DEFAULT_DEVICES,
    DEFAULT_PAGE_TYPES,
    Settings,
)
from streams.kpi.scorecard import Targets

_DEFAULTS = Settings()
CONVERSION_TARGET = Targets().conversion_target
"""Orders per visitor the war room colours green from (the scorecard's default target)."""
SLA_SECONDS = _DEFAULTS.sla_seconds
"""First-response p90 from this up is red; from 80 % of it, orange."""
AGENT_CAP = _DEFAULTS.agent_cap
"""Conversations one agent should hold at once."""
WAR_ROOM_UID = "shop-war-room"


def percent(share: float) -> str:
    """A share as the titles write it: ``0.35`` -> ``35 %``."""
    return f"{share * 100:g} %"


def _base(uid: str, title: str, refresh: str = "30s") -> d.Dashboard:
    """A dark board with the shop tags and a link to the war room in kiosk mode."""
    return (
        d.Dashboard(title)
        .uid(uid)
        .tags(["shop", "kpi"])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh(refresh)
        .style("dark")
        .link(
            d.DashboardLink("War room")
            .type(m.DashboardLinkType.LINK)
            .url(f"/d/{WAR_ROOM_UID}?kiosk")
            .target_blank(True)
        )
    )


def war_room() -> d.Dashboard:
    """The wall screen: big numbers, GMV against last week, tops and channels, no scrolling."""
    green_red = ((None, "red"), (CONVERSION_TARGET, "green"))
    sla = ((None, "green"), (SLA_SECONDS * 0.8, "orange"), (SLA_SECONDS, "red"))
    board = (
        _base(WAR_ROOM_UID, "Shop war room", refresh="5s")
        .time("now-3h", "now")
        .with_panel(
            big_stat("GMV today", 'shop_gmv_yuan{window="day"}', "currencyCNY", 0, 0, decimals=0)
        )
        .with_panel(
            big_stat("Paying buyers today", 'shop_paying_visitors{window="day"}', "none", 4, 0)
        )
        .with_panel(big_stat("UV now (5 min)", 'shop_unique_visitors{window="5m"}', "none", 8, 0))
        .with_panel(big_stat("UV today", 'shop_unique_visitors{window="day"}', "none", 12, 0))
        .with_panel(
            big_stat(
                f"Orders / visitor (target {percent(CONVERSION_TARGET)})",
                'shop_orders_per_visitor{window="day"}',
                "percentunit",
                16,
                0,
                steps=green_red,
                decimals=1,
            )
        )
        .with_panel(
            big_stat(
                "AOV", 'shop_aov_per_buyer_yuan{window="day"}', "currencyCNY", 20, 0, decimals=2
            )
        )
        .with_panel(
            big_stat(
                "Customers waiting",
                "shop_cs_waiting_customers",
                "none",
                0,
                5,
                steps=((None, "green"), (20, "orange"), (50, "red")),
            )
        )
        .with_panel(
            big_stat(
                f"First response p90 (SLA {SLA_SECONDS} s)",
                'histogram_quantile(0.9, shop_cs_first_response_seconds_bucket{window="30m"})',
                "s",
                4,
                5,
                steps=sla,
                decimals=1,
            )
        )
        .with_panel(
            big_stat(
                "跳失率 today (visitors, one page view)",
                'shop_live_bounce_rate{window="day"}',
                "percentunit",
                0,
                10,
                decimals=1,
            )
        )
        .with_panel(
            big_stat(
                "跳失率 this hour",
                'shop_live_bounce_rate{window="hour"}',
                "percentunit",
                4,
                10,
                decimals=1,
            )
        )
        .with_panel(
            series(
                "GMV per complete minute, against the same minute last week",
                [
                    query('shop_gmv_yuan{window="last_minute"}', "this week"),
                    query('shop_gmv_yuan{window="last_minute"} offset 1w', "last week"),
                ],
                "currencyCNY",
                8,
                5,
                w=16,
                h=10,
            )
        )
        .with_panel(
            top_table(
                "Top products today (views)",
                'shop_top_products_views{window="day"}',
                "none",
                0,
                15,
                w=6,
            )
        )
        .with_panel(
            top_table(
                "Top pages today (views)", 'shop_top_pages_views{window="day"}', "none", 6, 15, w=6
            )
        )
        .with_panel(
            top_table(
                "Top 20 exit pages today (exit rate)",
                'shop_top_exit_pages_rate{window="day"}',
                "percentunit",
                12,
                15,
                w=6,
            )
        )
        .with_panel(
            top_table(
                "Channels today (PV)",
                'shop_page_views_by_channel{window="day"}',
                "none",
                18,
                15,
                w=6,
            )
        )
    )
    return board


def traffic() -> d.Dashboard:
    """Traffic and conversion, with channel, campaign, page-type and device variables."""
    w = '{window="hour"}'
    return (
        _base("shop-traffic", "Traffic and conversion")
        .with_variable(variable("channel", DEFAULT_CHANNELS))
        .with_variable(variable("campaign", DEFAULT_CAMPAIGNS))
        .with_variable(variable("page_type", DEFAULT_PAGE_TYPES))
        .with_variable(variable("device", DEFAULT_DEVICES))
        .with_panel(
            series(
                "Funnel today (distinct visitors)",
                [
                    query('shop_unique_visitors{window="day"}', "visit"),
                    query('shop_product_viewers{window="day"}', "product view"),
                    query('shop_cart_visitors{window="day"}', "cart"),
                    query('shop_ordering_visitors{window="day"}', "order"),
                    query('shop_paying_visitors{window="day"}', "pay"),
                ],
                "none",
                0,
                0,
            )
        )
        .with_panel(
            series(
                "Conversion today",
                [
                    query('shop_order_conversion{window="day"}', "order conversion"),
                    query('shop_payment_conversion{window="day"}', "payment conversion"),
                    query('shop_orders_per_visitor{window="day"}', "orders / visitor"),
                ],
                "percentunit",
                12,
                0,
            )
        )
        .with_panel(
            series(
                "Channel $channel: PV and UV per hour so far",
                [
                    query('shop_page_views_by_channel{window="hour", channel="$channel"}', "PV"),
                    query(
                        'shop_unique_visitors_by_channel{window="hour", channel="$channel"}', "UV"
                    ),
                ],
                "none",
                0,
                8,
            )
        )
        .with_panel(
            series(
                "Channel $channel: conversion, bounce, pages per visit",
                [
                    query(
                        'shop_payment_conversion_by_channel{window="day", channel="$channel"}',
                        "payment conversion",
                    ),
                    query(
                        'shop_bounce_rate_by_channel{window="day", channel="$channel"}', "bounce"
                    ),
                ],
                "percentunit",
                12,
                8,
            )
        )
        .with_panel(
            series(
                "Campaign $campaign, page type $page_type, device $device (PV today)",
                [
                    query(
                        'shop_page_views_by_campaign{window="day", campaign="$campaign"}',
                        "campaign",
                    ),
                    query(
                        'shop_page_views_by_page_type{window="day", page_type="$page_type"}',
                        "page type",
                    ),
                    query('shop_page_views_by_device{window="day", device="$device"}', "device"),
                ],
                "none",
                0,
                16,
            )
        )
        .with_panel(
            series(
                "Sessions, bounce, exit rate, time on page",
                [
                    query(f"shop_sessions{w}", "sessions this hour"),
                    query('shop_bounce_rate{window="day"}', "bounce rate today"),
                    query(
                        'shop_exit_rate_by_page_type{window="day", page_type="$page_type"}',
                        "exit rate of $page_type",
                    ),
                    query('shop_time_on_page_avg_seconds{window="day"}', "time on page (s)"),
                ],
                "none",
                12,
                16,
            )
        )
        .with_panel(
            series(
                "Week over week: PV this week so far vs last week",
                [
                    query('shop_page_views{window="week"}', "this week"),
                    query('shop_page_views{window="last_week"}', "last week"),
                ],
                "none",
                0,
                24,
                w=24,
            )
        )
    )


def sales() -> d.Dashboard:
    """Sales and marketing."""
    day = '{window="day"}'
    return (
        _base("shop-sales", "Sales and marketing")
        .with_panel(
            series(
                "GMV and net GMV today",
                [
                    query(f"shop_gmv_yuan{day}", "GMV"),
                    query(f"shop_net_gmv_yuan{day}", "net GMV"),
                ],
                "currencyCNY",
                0,
                0,
            )
        )
        .with_panel(
            series(
                "Orders today",
                [
                    query(f"shop_orders_created{day}", "created"),
                    query(f"shop_orders_paid{day}", "paid"),
                    query(f"shop_orders_cancelled{day}", "cancelled"),
                    query(f"shop_orders_refunded{day}", "refunded"),
                ],
                "none",
                12,
                0,
            )
        )
        .with_panel(
            series(
                "AOV and return rate",
                [
                    query(f"shop_aov_per_buyer_yuan{day}", "AOV per buyer"),
                    query(f"shop_aov_per_order_yuan{day}", "per order"),
                ],
                "currencyCNY",
                0,
                8,
            )
        )
        .with_panel(
            top_table(
                "Repeat purchase this month (buyers by paid orders)",
                'shop_repeat_buyers{window="month"}',
                "none",
                12,
                8,
                w=12,
                h=8,
            )
        )
        .with_panel(
            series(
                "Members: new-member and all-member purchase ratio",
                [
                    query('shop_new_member_purchase_ratio{window="month"}', "new members"),
                    query('shop_member_purchase_ratio{window="month"}', "all members"),
                    query(f"shop_return_rate{day}", "return rate"),
                ],
                "percentunit",
                0,
                16,
            )
        )
        .with_panel(
            series(
                "Campaigns: participation, GMV and order share, ROI",
                [
                    query(f"shop_campaign_participation{day}", "participation"),
                    query(f"shop_campaign_gmv_share{day}", "GMV share"),
                    query(f"shop_campaign_order_share{day}", "order share"),
                ],
                "percentunit",
                12,
                16,
            )
        )
        .with_panel(
            top_table(
                "Scorecard this week (score per item)",
                'shop_scorecard_score{period="week"}',
                "none",
                0,
                32,
                w=12,
                h=10,
            )
        )
        .with_panel(
            big_stat(
                "Score this week (of 100)",
                'shop_scorecard_total{period="week"}',
                "none",
                12,
                32,
                w=6,
                h=5,
                steps=((None, "red"), (60, "orange"), (80, "green")),
                decimals=1,
            )
        )
        .with_panel(
            big_stat(
                "Score this month (of 100)",
                'shop_scorecard_total{period="month"}',
                "none",
                18,
                32,
                w=6,
                h=5,
                steps=((None, "red"), (60, "orange"), (80, "green")),
                decimals=1,
            )
        )
        .with_panel(
            series(
                "ROI, UV cost, ad arrival rate",
                [
                    query(f"shop_campaign_roi{day}", "campaign ROI"),
                    query(f"shop_uv_cost_yuan{day}", "UV cost (yuan)"),
                    query(f"shop_ad_arrival_rate{day}", "ad arrival rate"),
                ],
                "none",
                0,
                24,
                w=24,
            )
        )
    )


def customer_service() -> d.Dashboard:
    """Customer service."""
    return (
        _base("shop-service", "Customer service")
        .with_panel(
            series(
                "Response time p50 / p90 (30 min)",
                [
                    query(
                        'histogram_quantile(0.5, shop_cs_response_seconds_bucket{window="30m"})',
                        "p50",
                    ),
                    query(
                        'histogram_quantile(0.9, shop_cs_response_seconds_bucket{window="30m"})',
                        "p90",
                    ),
                    query(
                        "histogram_quantile(0.9, "
                        'shop_cs_first_response_seconds_bucket{window="30m"})',
                        "first response p90",
                    ),
                ],
                "s",
                0,
                0,
            )
        )
        .with_panel(
            series(
                "SLA share",
                [
                    query('shop_cs_sla_share{window="day"}', "responses within SLA"),
                    query('shop_cs_first_response_sla_share{window="day"}', "first responses"),
                ],
                "percentunit",
                12,
                0,
            )
        )
        .with_panel(
            series(
                "Waiting now",
                [
                    query("shop_cs_waiting_customers", "customers waiting"),
                    query("shop_cs_longest_wait_seconds", "longest wait (s)"),
                ],
                "none",
                0,
                8,
            )
        )
        .with_panel(
            series(
                f"Agent concurrency (cap {AGENT_CAP})",
                [
                    query("shop_cs_agent_concurrency_max", "most held by one agent"),
                    query("shop_cs_agents_busy", "agents busy"),
                    query("shop_cs_agents_over_cap", "agents over cap"),
                ],
                "none",
                12,
                8,
            )
        )
        .with_panel(
            series(
                "Complaints and reviews",
                [
                    query('shop_complaints_opened{window="day"}', "complaints opened"),
                    query('shop_complaint_handling_avg_seconds{window="day"}', "avg handling (s)"),
                    query('shop_cs_conversations{window="day"}', "conversations"),
                ],
                "none",
                0,
                16,
            )
        )
        .with_panel(
            series(
                "Satisfaction and good reviews",
                [
                    query('shop_complaint_satisfaction{window="day"}', "complaint satisfaction"),
                    query('shop_good_review_rate{window="day"}', "good-review rate"),
                ],
                "percentunit",
                12,
                16,
            )
        )
    )


def pipeline() -> d.Dashboard:
    """Pipeline operations."""
    return (
        _base("shop-pipeline", "Pipeline operations")
        .with_panel(
            series(
                "Events in per topic (per second)",
                [
                    query("sum by (topic) (rate(shop_events_consumed_total[1m]))", "{{topic}}"),
                ],
                "ops",
                0,
                0,
            )
        )
        .with_panel(
            series(
                "Rejected events per reason",
                [
                    query(
                        "sum by (reason) (increase(shop_events_rejected_total[5m]))", "{{reason}}"
                    ),
                ],
                "none",
                12,
                0,
            )
        )
        .with_panel(
            series(
                "Consumer lag per partition",
                [
                    query("shop_worker_consumer_lag", "{{topic}}/{{partition}}"),
                ],
                "none",
                0,
                8,
            )
        )
        .with_panel(
            series(
                "Watermark delay per partition",
                [
                    query("shop_watermark_delay_seconds", "{{topic}}/{{partition}}"),
                ],
                "s",
                12,
                8,
            )
        )
        .with_panel(
            series(
                "Batch size and apply latency (p90)",
                [
                    query(
                        "histogram_quantile(0.9, sum by (le) "
                        "(rate(shop_worker_batch_records_bucket[5m])))",
                        "batch records p90",
                    ),
                    query(
                        "histogram_quantile(0.9, sum by (le) "
                        "(rate(shop_worker_apply_seconds_bucket[5m])))",
                        "apply seconds p90",
                    ),
                ],
                "none",
                0,
                16,
            )
        )
        .with_panel(
            series(
                "Late events, last apply, exporter scrape",
                [
                    query("sum(increase(shop_late_events_total[5m]))", "late events (5 min)"),
                    query(
                        "time() - max(shop_last_apply_timestamp_seconds)",
                        "seconds since last apply",
                    ),
                    query("shop_exporter_scrape_duration_seconds", "exporter scrape (s)"),
                    query('up{job=~"kpi-.*"}', "up {{job}}"),
                ],
                "none",
                12,
                16,
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], d.Dashboard]] = {
    WAR_ROOM_UID: war_room,
    "shop-traffic": traffic,
    "shop-sales": sales,
    "shop-service": customer_service,
    "shop-pipeline": pipeline,
}
"""Every board by uid, in the order they are written and pushed."""
