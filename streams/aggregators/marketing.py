"""Marketing spend and impressions from cost reports (counted at the report's event time)."""

from __future__ import annotations

from streams.aggregators.context import BatchContext
from streams.common.timebuckets import Bucket
from streams.ingest.events import Event


def cost_report(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Spend per channel and campaign; reported impressions feed the ad arrival rate."""
    channel, campaign = event.text("channel"), event.text("campaign")
    ctx.delta.count(
        buckets, "spend_cents", event.number("spend"), channel=channel, campaign=campaign
    )
    impressions = event.number("impressions")
    if impressions:
        ctx.delta.count(buckets, "ad_impressions", impressions, channel=channel, campaign=campaign)


HANDLERS = {"cost_report": cost_report}
