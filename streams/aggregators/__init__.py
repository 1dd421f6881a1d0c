"""Pure aggregation of a partition batch into a :class:`BatchDelta`: no I/O, no clock reads.

The live worker, replay and tests all feed decoded events through
:meth:`KpiAggregator.aggregate`; the sink turns the delta into one atomic
Redis apply. Per event type the work is done by the domain modules
(``traffic``, ``orders``, ``chat``, ``marketing``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streams.aggregators import chat, marketing, orders, traffic, visits
from streams.aggregators.context import AggregatorConfig, BatchContext
from streams.aggregators.delta import BatchDelta
from streams.aggregators.memory import CLOSE, ShardMemory
from streams.common.keys import ANY, field, parse_field
from streams.common.timebuckets import Bucket, BucketClock, Granularity
from streams.ingest.events import Event, Rejection, RejectReason

__all__ = [
    "ANY",
    "AggregatorConfig",
    "BatchDelta",
    "KpiAggregator",
    "ShardMemory",
    "field",
    "parse_field",
]

Handler = Callable[[BatchContext, Event, tuple[Bucket, ...]], None]


class KpiAggregator:
    """Folds events onto a delta and the shard's memory."""

    def __init__(self, clock: BucketClock, config: AggregatorConfig) -> None:
        self.clock = clock
        self.config = config
        self._handlers: dict[str, Handler] = {
            **traffic.HANDLERS,
            **orders.HANDLERS,
            **chat.HANDLERS,
            **marketing.HANDLERS,
        }

    def aggregate(
        self, events: Iterable[Event | Rejection], memory: ShardMemory, now_ms: int
    ) -> BatchDelta:
        """Fold ``events`` (in offset order) onto a new delta, updating ``memory``.

        An event more than ``late_after_ms`` behind the shard's watermark still
        counts in every retained bucket, and is counted as late; one more than the
        allowed lateness behind joins no visit or conversation (``too_late``). An order
        event its order had before counts nowhere: it is in ``delta.refused``. Buckets whose
        retention ended before ``now_ms`` are skipped. ``memory`` is changed in
        place: a caller whose apply is refused must reload it.
        """
        ctx = BatchContext(self.clock, self.config, BatchDelta(), memory, now_ms // 1000)
        delta = ctx.delta
        wm_before = ctx.watermark_before = memory.watermark_ms
        repeatable = orders.ORDER_KINDS
        handlers, retained = self._handlers, ctx.retained
        late_after = self.config.late_after_ms
        consumed = late = 0
        for position, event in enumerate(events):
            consumed += 1
            if isinstance(event, Rejection):
                delta.rejected[event.reason] += 1
                continue
            if event.type in repeatable and not orders.first_of_its_kind(ctx, event):
                refusal = Rejection(
                    RejectReason.DUPLICATE_ORDER_EVENT,
                    f"{event.type} of order {event.text('order_id')[:64]!r} counted before",
                )
                delta.rejected[refusal.reason] += 1
                delta.refused.append((position, refusal))
                continue
            wm = memory.watermark_ms
            event_ms = event.event_ms
            if wm is not None and event_ms < wm - late_after:
                late += 1
            handlers[event.type](ctx, event, retained(event_ms))
            if wm is None or event_ms > wm:
                memory.watermark_ms = event_ms
        delta.consumed += consumed
        delta.late += late
        if ctx.page_views:
            ctx.page_views.fold(delta, ctx.retained)
        if memory.watermark_ms is not None:
            # Visits and conversations: their figures change with the batch's events and
            # with the watermark, at the end of the batch, the same whatever its size.
            visits.settle_visits(ctx, wm_before, memory.watermark_ms)
            visits.drop_view_depth(ctx, wm_before, memory.watermark_ms)
            chat.settle_conversations(ctx, wm_before, memory.watermark_ms)
            orders.forget_orders(ctx, memory.watermark_ms)
        delta.watermark_ms = memory.watermark_ms
        return delta

    def end_of_input(self, watermark_ms: int) -> int:
        """The watermark at which all open at ``watermark_ms`` is closed and forgotten.

        That is the longest timeout plus the allowed lateness later.
        """
        config = self.config
        longest = max(config.session_timeout_ms, config.conversation_timeout_ms)
        return watermark_ms + longest + config.allowed_lateness_ms + 1

    def end_input(self, memory: ShardMemory, now_ms: int) -> BatchDelta:
        """Close every visit and conversation, as the end of a finished log does.

        Moves the watermark past the newest event by the longest timeout plus the
        allowed lateness, so that each open visit and conversation closes (bounce, exit,
        duration, its wait ended) and is forgotten, as it would be had events gone on.
        Only for input that has ended: an event later than that is too late for visits
        and conversations. ``memory`` is changed in place, as by :meth:`aggregate`.
        """
        ctx = BatchContext(self.clock, self.config, BatchDelta(), memory, now_ms // 1000)
        delta = ctx.delta
        wm_before = ctx.watermark_before = memory.watermark_ms
        if wm_before is None:
            return delta
        config = self.config
        delta.ended_visits = sum(
            1 for v in memory.visits.values() if wm_before - v[-1].ms <= config.session_timeout_ms
        )
        delta.ended_conversations = sum(
            1
            for m in memory.conversations.values()
            if m[-1].kind != CLOSE and wm_before - m[-1].ms <= config.conversation_timeout_ms
        )
        end = self.end_of_input(wm_before)
        memory.watermark_ms = delta.watermark_ms = end
        visits.settle_visits(ctx, wm_before, end)
        # ...and every hour and day up to the end of the last one (a day may outlast the
        # timeouts: a 25-hour day, conversations that time out in less than a day)
        last_day = self.clock.bucket_at(Granularity.DAY, wm_before / 1000)
        depth_end = self.clock.end_of(last_day) * 1000 + config.allowed_lateness_ms
        visits.drop_view_depth(ctx, wm_before, max(end, depth_end))
        chat.settle_conversations(ctx, wm_before, end)
        orders.forget_orders(ctx, end)
        return delta

    def expires_at(self, bucket: Bucket) -> int:
        """Epoch second at which a bucket's data is dropped (end + retention)."""
        end = max(self.clock.end_of(bucket), self.config.kept_from_s)
        return end + self.config.retention_s[bucket.granularity]
