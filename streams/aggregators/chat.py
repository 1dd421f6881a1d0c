"""Customer-service KPIs from conversations, in event time.

A customer message starts a wait (unless one is running); the next human
agent message ends it and yields a response time, and the first one in the
conversation also the first response time (from the first customer message).
Bot messages end nothing. Who is waiting, and since when, is kept in a sorted
set so the exporter can show the live count and the longest wait; each
agent's open conversations are tallied for concurrency.
"""

from __future__ import annotations

from streams.aggregators.context import BatchContext
from streams.aggregators.memory import (
    AGENT_OPEN_TALLY,
    COMPLAINT_TABLE,
    CONVERSATION_TABLE,
    WAITING_ZSET,
    Conversation,
)
from streams.events import Event
from streams.timebuckets import Bucket

RESPONSE_BINS_S = (5, 10, 15, 30, 60, 120, 300, 600)
"""Upper bounds of the response-time histogram bins (seconds); one more bin is +Inf."""


def bin_label(duration_ms: int) -> str:
    """The ``le`` label of the histogram bin holding ``duration_ms``."""
    for bound in RESPONSE_BINS_S:
        if duration_ms <= bound * 1000:
            return str(bound)
    return "+Inf"


def _conversation(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> Conversation:
    key = event.text("conversation_id")
    conversation = ctx.memory.conversations.get(key)
    if conversation is None:
        conversation = Conversation(event.event_ms, event.event_ms)
        ctx.memory.conversations[key] = conversation
        ctx.delta.count(buckets, "cs_conversations")
    conversation.last_ms = max(conversation.last_ms, event.event_ms)
    return conversation


def _save(ctx: BatchContext, event: Event, conversation: Conversation) -> None:
    ctx.touched_conversations.add(event.text("conversation_id"))


def customer_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Start waiting, if the customer is not already waiting."""
    conversation = _conversation(ctx, event, buckets)
    ctx.delta.count(buckets, "cs_customer_messages")
    if conversation.first_customer_ms is None:
        conversation.first_customer_ms = event.event_ms
    if conversation.waiting_since_ms is None:
        conversation.waiting_since_ms = event.event_ms
        ctx.delta.put_zset(WAITING_ZSET, event.text("conversation_id"), event.event_ms)
    _save(ctx, event, conversation)


def agent_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """End the wait: response time, first response time, SLA; agent assignment."""
    delta = ctx.delta
    conversation = _conversation(ctx, event, buckets)
    agent = event.text("agent_id")
    if conversation.agent != agent:
        if conversation.agent:
            delta.tallies[(AGENT_OPEN_TALLY, conversation.agent)] -= 1
        delta.tallies[(AGENT_OPEN_TALLY, agent)] += 1
        conversation.agent = agent
    if conversation.waiting_since_ms is not None:
        waited = max(0, event.event_ms - conversation.waiting_since_ms)
        _record_response(ctx, buckets, "cs_response", waited)
        conversation.waiting_since_ms = None
        delta.delete_zset(WAITING_ZSET, event.text("conversation_id"))
    if not conversation.responded and conversation.first_customer_ms is not None:
        first = max(0, event.event_ms - conversation.first_customer_ms)
        _record_response(ctx, buckets, "cs_first_response", first)
        conversation.responded = True
    _save(ctx, event, conversation)


def _record_response(
    ctx: BatchContext, buckets: tuple[Bucket, ...], name: str, duration_ms: int
) -> None:
    """Count, sum, histogram bin and SLA hit of one (first) response time."""
    ctx.delta.count(buckets, f"{name}s")
    ctx.delta.count(buckets, f"{name}_ms", duration_ms)
    ctx.delta.count(buckets, f"{name}_bin", le=bin_label(duration_ms))
    if duration_ms <= ctx.config.sla_ms:
        ctx.delta.count(buckets, f"{name}s_within_sla")


def bot_message(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Bot replies keep the conversation alive but answer nothing."""
    conversation = _conversation(ctx, event, buckets)
    ctx.delta.count(buckets, "cs_bot_messages")
    _save(ctx, event, conversation)


def conversation_closed(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """The conversation ends: release the agent and stop any wait."""
    key = event.text("conversation_id")
    conversation = ctx.memory.conversations.get(key)
    if conversation is not None:
        _close(ctx, key, conversation)
        ctx.delta.count(buckets, "cs_conversations_closed")


def _close(ctx: BatchContext, key: str, conversation: Conversation) -> None:
    if conversation.agent:
        ctx.delta.tallies[(AGENT_OPEN_TALLY, conversation.agent)] -= 1
    if conversation.waiting_since_ms is not None:
        ctx.delta.delete_zset(WAITING_ZSET, key)
    del ctx.memory.conversations[key]
    ctx.delta.delete_state(CONVERSATION_TABLE, key)


def close_idle_conversations(ctx: BatchContext, watermark_ms: int) -> None:
    """Forget conversations silent for longer than the conversation timeout."""
    limit = watermark_ms - ctx.config.conversation_timeout_ms
    conversations = ctx.memory.conversations
    for key in [k for k, c in conversations.items() if c.last_ms < limit]:
        _close(ctx, key, conversations[key])


def complaint_opened(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """A complaint starts its handling clock."""
    complaint = event.text("complaint_id")
    ctx.delta.count(buckets, "complaints_opened")
    ctx.memory.complaints[complaint] = event.event_ms
    ctx.delta.put_state(COMPLAINT_TABLE, complaint, str(event.event_ms))


def complaint_resolved(ctx: BatchContext, event: Event, buckets: tuple[Bucket, ...]) -> None:
    """Handling time (when the opening was seen) and satisfaction."""
    delta = ctx.delta
    complaint = event.text("complaint_id")
    delta.count(buckets, "complaints_resolved")
    if event.flag("satisfied"):
        delta.count(buckets, "complaints_satisfied")
    opened = ctx.memory.complaints.pop(complaint, None)
    if opened is not None:
        delta.count(buckets, "complaints_timed")
        delta.count(buckets, "complaint_handling_ms", max(0, event.event_ms - opened))
        delta.delete_state(COMPLAINT_TABLE, complaint)


HANDLERS = {
    "customer_message": customer_message,
    "agent_message": agent_message,
    "bot_message": bot_message,
    "conversation_closed": conversation_closed,
    "complaint_opened": complaint_opened,
    "complaint_resolved": complaint_resolved,
}
