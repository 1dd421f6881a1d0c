"""Customer-service KPIs from conversations, in event time, with allowed lateness.

A conversation's messages are kept in event-time order, like a visitor's views
(:mod:`streams.aggregators.visits`), and every figure is read off that order
(:func:`conversation_figures`): a customer message starts a wait (unless one is
running); the next human agent message ends it and yields a response time, and the
first one in the conversation also the first response time (from the first customer
message). Bot messages end nothing. A message more than the conversation timeout
after the previous one starts a new conversation. A late message within the allowed
lateness joins the conversation its time puts it in and the figures emitted before
are corrected. Who is waiting, and since when, is kept in a sorted set so the
exporter can show the live count and the longest wait; each agent's open
conversations are tallied for concurrency.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

from streams.aggregators import visits
from streams.aggregators.context import BatchContext
from streams.aggregators.figures import Figures, emit_difference
from streams.aggregators.memory import (
    AGENT,
    BOT,
    CLOSE,
    CUSTOMER,
    Complaint,
    Message,
    encode_messages,
)
from streams.aggregators.visits import NEVER
from streams.common.keys import (
    COMPLAINT_TABLE,
    CONVERSATION_TABLE,
    HOLDING_ZSET,
    LIVE_SEPARATOR,
    RESPONSE_BINS_S,
    WAITING_ZSET,
)
from streams.common.timebuckets import Bucket
from streams.ingest.events import Event

_BIN_BOUNDS_MS = tuple(bound * 1000 for bound in RESPONSE_BINS_S)
_BIN_LABELS = (*(str(bound) for bound in RESPONSE_BINS_S), "+Inf")


def bin_label(duration_ms: int) -> str:
    """The ``le`` label of the histogram bin holding ``duration_ms``."""
    return _BIN_LABELS[bisect_left(_BIN_BOUNDS_MS, duration_ms)]


def _add(ctx: BatchContext, event: Event, kind: int, agent: str = "") -> None:
    """Place a message (or a close) in its conversation, unless it is too late to."""
    memory = ctx.memory
    wm = memory.watermark_ms
    if wm is not None and event.event_ms < wm - ctx.config.allowed_lateness_ms:
        ctx.delta.too_late += 1
        return
    key = event.text("conversation_id")
    messages = memory.conversations.get(key)
    if messages is None:
        messages = memory.conversations[key] = []
    if key not in ctx.conversations_before:
        ctx.conversations_before[key] = list(messages)
    message = Message(event.event_ms, kind, agent)
    if not messages or messages[-1] <= message:
        messages.append(message)
    else:
        insort(messages, message)


def customer_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """A customer's message: it starts a wait unless one is running."""
    ctx.delta.count(buckets, "cs_customer_messages")
    _add(ctx, event, CUSTOMER)


def agent_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """A human agent's message: it ends the wait and takes the conversation."""
    _add(ctx, event, AGENT, event.text("agent_id"))


def bot_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Bot replies keep the conversation alive but answer nothing."""
    ctx.delta.count(buckets, "cs_bot_messages")
    _add(ctx, event, BOT)


def conversation_closed(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """The conversation ends: it releases its agent and stops any wait."""
    _add(ctx, event, CLOSE)


@dataclass(slots=True)
class Conversations:
    """What a conversation's messages yield at a watermark."""

    figures: Figures
    waiting_since_ms: int | None
    """Start of the running wait of the conversation still open, if any."""
    agent: str
    """Agent holding the conversation still open ("" if none)."""
    segments: list[tuple[int, int]]
    """(end index, end time) of each conversation in order, a stray close its own:
    the time after which nothing later can change it (close time, or last message
    plus the timeout)."""


def conversation_figures(
    ctx: BatchContext, messages: list[Message], watermark_ms: int | None
) -> Conversations:
    """Everything the conversations of ``messages`` (in time order) contribute.

    A conversation starts at a message when none is open or the previous message is
    more than the conversation timeout before it; a close ends the open one (a close
    with none open ends nothing). In each: a customer message starts a wait unless
    one runs; the next agent message ends it (a response, in the agent message's
    buckets) and takes the conversation; the first agent message after the first
    customer message is the first response. Bots end nothing.
    """
    figures = Figures()
    timeout = ctx.config.conversation_timeout_ms
    retained = ctx.retained
    segments: list[tuple[int, int]] = []
    is_open = False
    last_ms = first_customer = waiting = 0
    has_first = has_wait = responded = False
    agent = ""
    for index, message in enumerate(messages):
        ms, kind = message.ms, message.kind
        if is_open and ms - last_ms > timeout:
            segments.append((index, last_ms + timeout))
            is_open = False
        if kind == CLOSE:
            if is_open:
                figures.count(retained(ms), "cs_conversations_closed", 1)
            segments.append((index + 1, ms))
            is_open = False
            continue
        if not is_open:
            is_open = True
            figures.count(retained(ms), "cs_conversations", 1)
            has_first = has_wait = responded = False
            agent = ""
        last_ms = ms
        if kind == CUSTOMER:
            if not has_first:
                has_first, first_customer = True, ms
            if not has_wait:
                has_wait, waiting = True, ms
        elif kind == AGENT:
            agent = message.agent
            buckets = retained(ms)
            if has_wait:
                _record_response(ctx, figures, buckets, "cs_response", ms - waiting)
                has_wait = False
            if has_first and not responded:
                _record_response(ctx, figures, buckets, "cs_first_response", ms - first_customer)
                responded = True
    if is_open:
        segments.append((len(messages), last_ms + timeout))
        wm = -NEVER if watermark_ms is None else watermark_ms
        if wm - last_ms <= timeout:
            return Conversations(figures, waiting if has_wait else None, agent, segments)
    return Conversations(figures, None, "", segments)


def _record_response(
    ctx: BatchContext, figures: Figures, buckets: tuple[Bucket, ...], name: str, duration_ms: int
) -> None:
    """Count, sum, histogram bin and SLA hit of one (first) response time."""
    figures.count(buckets, f"{name}s", 1)
    figures.count(buckets, f"{name}_ms", duration_ms)
    figures.count(buckets, f"{name}_bin", 1, (("le", bin_label(duration_ms)),))
    if duration_ms <= ctx.config.sla_ms:
        figures.count(buckets, f"{name}s_within_sla", 1)


def settle_conversations(ctx: BatchContext, wm_before: int | None, wm_after: int) -> None:
    """Settle the conversations this batch or the watermark changed.

    Emits the change in the figures, the wait and the agent of every conversation whose
    messages changed in this batch or that the watermark timed out; forgets the
    conversations no late message can reach, and resolutions whose opening is too late.
    """
    memory = ctx.memory
    due = memory.conversations_due
    keys = set(ctx.conversations_before)
    keys.update(due.pop_due(wm_after))
    horizon = visits.forget_before(ctx, wm_after)
    lateness = ctx.config.allowed_lateness_ms
    delta = ctx.delta
    for complaint in memory.complaints_due.pop_due(wm_after):
        pending = memory.complaints.get(complaint)
        if pending is None or pending.opened_ms is not None or pending.resolved_ms is None:
            continue
        if pending.resolved_ms < horizon:  # an opening could only come too late now
            del memory.complaints[complaint]
            delta.delete_state(COMPLAINT_TABLE, complaint)
        else:
            memory.complaints_due.schedule(complaint, pending.resolved_ms + lateness)
    for key in keys:
        messages = memory.conversations.get(key)
        if messages is None:
            continue
        before_messages = ctx.conversations_before.get(key, messages)
        before = conversation_figures(ctx, before_messages, wm_before)
        after = conversation_figures(ctx, messages, wm_after)
        if emit_difference(delta, before.figures, after.figures):
            delta.retractions += 1
        unsure = key in memory.live_unsure  # just loaded: its entries are written again
        memory.live_unsure.discard(key)
        was = _live_entries(ctx, key, before, before_messages)
        now = _live_entries(ctx, key, after, messages)
        for entry in was.keys() - now.keys():
            delta.delete_zset(*entry)
        for entry, ends_ms in now.items():
            if unsure or was.get(entry) != ends_ms:
                delta.put_zset(*entry, ends_ms)
        keep = 0
        for end_index, end_ms in after.segments:
            if end_ms >= horizon:
                break
            keep = end_index
        if keep:
            del messages[:keep]
        if not messages:
            del memory.conversations[key]
            delta.delete_state(CONVERSATION_TABLE, key)
            continue
        if keep or key in ctx.conversations_before:
            delta.put_state(CONVERSATION_TABLE, key, encode_messages(messages))
        first_end = next((t for i, t in after.segments if i > keep), NEVER)
        due_at = first_end + ctx.config.allowed_lateness_ms
        if after.waiting_since_ms is not None or after.agent:  # until the timeout ends them
            due_at = min(due_at, messages[-1].ms + ctx.config.conversation_timeout_ms)
        due.schedule(key, due_at)


def _live_entries(
    ctx: BatchContext, key: str, open_part: Conversations, messages: list[Message]
) -> dict[tuple[str, str], int]:
    """The live-set entries of a conversation still open: (set, member) -> when it ends.

    It ends, unless a message comes, the conversation timeout after its last message.
    """
    out: dict[tuple[str, str], int] = {}
    if open_part.waiting_since_ms is None and not open_part.agent:
        return out
    ends_ms = messages[-1].ms + ctx.config.conversation_timeout_ms
    if open_part.waiting_since_ms is not None:
        member = f"{open_part.waiting_since_ms}{LIVE_SEPARATOR}{key}"
        out[(WAITING_ZSET, member)] = ends_ms
    if open_part.agent:
        out[(HOLDING_ZSET, f"{open_part.agent}{LIVE_SEPARATOR}{key}")] = ends_ms
    return out


def complaint_opened(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """A complaint starts its handling clock (its resolution may have come first)."""
    complaint = event.text("complaint_id")
    ctx.delta.count(buckets, "complaints_opened")
    wm = ctx.memory.watermark_ms
    if wm is not None and event.event_ms < wm - ctx.config.allowed_lateness_ms:
        ctx.delta.too_late += 1  # counted, but never paired with a resolution
        return
    state = ctx.memory.complaints.get(complaint)
    if state is None:
        state = ctx.memory.complaints[complaint] = Complaint()
    if state.opened_ms is not None:
        return
    state.opened_ms = event.event_ms
    if state.resolved_ms is None:
        ctx.delta.put_state(COMPLAINT_TABLE, complaint, state.encode())
    else:
        _time_complaint(ctx, complaint, state.opened_ms, state.resolved_ms)


def complaint_resolved(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Resolution and satisfaction; the handling time once the opening is known."""
    delta = ctx.delta
    complaint = event.text("complaint_id")
    delta.count(buckets, "complaints_resolved")
    if event.flag("satisfied"):
        delta.count(buckets, "complaints_satisfied")
    state = ctx.memory.complaints.get(complaint)
    if state is not None and state.opened_ms is not None:
        _time_complaint(ctx, complaint, state.opened_ms, event.event_ms)
    elif state is None:
        ctx.memory.complaints[complaint] = Complaint(None, event.event_ms)
        delta.put_state(COMPLAINT_TABLE, complaint, f",{event.event_ms}")
        # Forgotten once an opening could only come too late.
        due_at = event.event_ms + ctx.config.allowed_lateness_ms
        ctx.memory.complaints_due.schedule(complaint, due_at)


def _time_complaint(ctx: BatchContext, complaint: str, opened_ms: int, resolved_ms: int) -> None:
    buckets = ctx.retained(resolved_ms)
    ctx.delta.count(buckets, "complaints_timed")
    ctx.delta.count(buckets, "complaint_handling_ms", max(0, resolved_ms - opened_ms))
    del ctx.memory.complaints[complaint]
    ctx.delta.delete_state(COMPLAINT_TABLE, complaint)


HANDLERS = {
    "customer_message": customer_message,
    "agent_message": agent_message,
    "bot_message": bot_message,
    "conversation_closed": conversation_closed,
    "complaint_opened": complaint_opened,
    "complaint_resolved": complaint_resolved,
}
