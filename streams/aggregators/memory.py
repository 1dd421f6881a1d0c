"""Per-shard state that outlives a batch: visits, conversations, complaints.

Visits and conversations are kept as their events in event-time order (not as a
running summary), for as long as a late event within the allowed lateness could
still change them; every figure they yield is a function of that list
(:mod:`streams.aggregators.visits`). The worker keeps the state in memory for the
partitions it owns and persists every change in the same atomic apply as the KPI
increments (state tables in Redis), so that a restarted or rebalanced worker
reloads exactly what was applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

VISIT_TABLE = "visit"
"""A visitor's page views still open to late events, in event-time order (replaces the
``session`` table of earlier versions, which held one running session per visitor)."""
CONVERSATION_TABLE = "chat"
"""A conversation's messages still open to late events (replaces ``conversation``)."""
COMPLAINT_TABLE = "complaint"
STATE_TABLES = (VISIT_TABLE, CONVERSATION_TABLE, COMPLAINT_TABLE)
WAITING_ZSET = "waiting"
AGENT_OPEN_TALLY = "agent_open"

CUSTOMER, BOT, AGENT, CLOSE = 0, 1, 2, 3
"""Kinds of a conversation :class:`Message`; at one instant a customer's message comes
before the reply and a close comes last."""


class View(NamedTuple):
    """One page view of a visitor, as a visit needs it."""

    ms: int
    page: str
    page_type: str
    channel: str
    device: str
    campaign: str


class Message(NamedTuple):
    """One event of a conversation: a message (customer, bot, agent) or its close."""

    ms: int
    kind: int
    agent: str = ""


def encode_views(views: list[View]) -> str:
    """Compact text for the visit table (a JSON array of arrays)."""
    return orjson.dumps([tuple(v) for v in views]).decode()


def decode_views(text: str | bytes) -> list[View]:
    """Inverse of :func:`encode_views`."""
    return [View(*v) for v in orjson.loads(text)]


def encode_messages(messages: list[Message]) -> str:
    """Compact text for the conversation table (a JSON array of arrays)."""
    return orjson.dumps([tuple(m) for m in messages]).decode()


def decode_messages(text: str | bytes) -> list[Message]:
    """Inverse of :func:`encode_messages`."""
    return [Message(*m) for m in orjson.loads(text)]


@dataclass(slots=True)
class Complaint:
    """A complaint's opening and resolution times, whichever arrived (either may be late)."""

    opened_ms: int | None = None
    resolved_ms: int | None = None

    def encode(self) -> str:
        """``opened,resolved`` (either may be empty)."""
        opened = "" if self.opened_ms is None else str(self.opened_ms)
        resolved = "" if self.resolved_ms is None else str(self.resolved_ms)
        return f"{opened},{resolved}"

    @classmethod
    def decode(cls, text: str | bytes) -> Complaint:
        """Inverse of :meth:`encode`; a bare number (earlier versions) is an opening time."""
        value = text.decode() if isinstance(text, bytes) else text
        opened, sep, resolved = value.partition(",")
        if not sep:
            return cls(int(opened))
        return cls(int(opened) if opened else None, int(resolved) if resolved else None)


@dataclass
class ShardMemory:
    """Everything a shard's aggregation carries from one batch to the next."""

    watermark_ms: int | None = None
    visits: dict[str, list[View]] = field(default_factory=dict)
    conversations: dict[str, list[Message]] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    visits_due: list[tuple[int, str]] = field(default_factory=list)
    conversations_due: list[tuple[int, str]] = field(default_factory=list)
    """Min-heaps of (watermark at which a key's figures or state change, key): a visit
    closes or may be forgotten. Rebuilt on load; entries may be stale (checked when due)."""

    @classmethod
    def from_tables(
        cls, watermark_ms: int | None, tables: Mapping[str, Mapping[str, str | bytes]]
    ) -> ShardMemory:
        """Rebuild from the state tables stored in Redis."""
        memory = cls(
            watermark_ms,
            {k: decode_views(v) for k, v in tables.get(VISIT_TABLE, {}).items()},
            {k: decode_messages(v) for k, v in tables.get(CONVERSATION_TABLE, {}).items()},
            {k: Complaint.decode(v) for k, v in tables.get(COMPLAINT_TABLE, {}).items()},
        )
        # Every stored key is due at once: the first batch settles it (an empty change
        # when nothing moved) and schedules it again.
        memory.visits_due = [(-1, k) for k in sorted(memory.visits)]
        memory.conversations_due = [(-1, k) for k in sorted(memory.conversations)]
        return memory
