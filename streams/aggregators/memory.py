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

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from streams.common.keys import (
    COMPLAINT_TABLE,
    CONVERSATION_TABLE,
    ORDER_TABLE,
    VISIT_TABLE,
)

CUSTOMER, BOT, AGENT, CLOSE = 0, 1, 2, 3
"""Kinds of a conversation :class:`Message`; at one instant a customer's message comes
before the reply and a close comes last."""


class View(msgspec.Struct, array_like=True, frozen=True, order=True):
    """One page view of a visitor, as a visit needs it (ordered by time, then fields)."""

    ms: int
    page: str
    page_type: str
    channel: str
    device: str
    campaign: str


class Message(msgspec.Struct, array_like=True, frozen=True, order=True):
    """One event of a conversation: a message (customer, bot, agent) or its close."""

    ms: int
    kind: int
    agent: str = ""


_ENCODER = msgspec.json.Encoder()
_VIEWS = msgspec.json.Decoder(list[View])
_MESSAGES = msgspec.json.Decoder(list[Message])


def encode_views(views: list[View]) -> str:
    """Compact text for the visit table (a JSON array of arrays)."""
    return _ENCODER.encode(views).decode()


def decode_views(text: str | bytes) -> list[View]:
    """Inverse of :func:`encode_views`."""
    return _VIEWS.decode(text)


def encode_messages(messages: list[Message]) -> str:
    """Compact text for the conversation table (a JSON array of arrays)."""
    return _ENCODER.encode(messages).decode()


def decode_messages(text: str | bytes) -> list[Message]:
    """Inverse of :func:`encode_messages`."""
    return _MESSAGES.decode(text)


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


class DueKeys:
    """Keys due at a watermark: a min-heap with at most one live entry per key.

    Due means a visit closes, a conversation times out, or either may be forgotten. A
    key is scheduled again only for an earlier time than the one it has: a visitor's
    views, arriving in order, keep moving its closing time later, and one entry per
    key bounds the heap by the keys in memory (an entry per batch would grow with the
    event rate times the timeout). A key that comes due too early is settled (an empty
    change) and scheduled for its real time.
    """

    __slots__ = ("_heap", "_scheduled")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}

    @property
    def scheduled(self) -> Mapping[str, int]:
        """Each scheduled key's due time (read-only; :meth:`schedule` changes it)."""
        return self._scheduled

    def schedule(self, key: str, due_ms: int) -> None:
        """Make ``key`` due once the watermark passes ``due_ms`` (unless due earlier)."""
        scheduled = self._scheduled.get(key)
        if scheduled is None or due_ms < scheduled:
            self._scheduled[key] = due_ms
            heapq.heappush(self._heap, (due_ms, key))

    def pop_due(self, watermark_ms: int) -> list[str]:
        """The keys due before ``watermark_ms``, now unscheduled."""
        heap, scheduled = self._heap, self._scheduled
        out: list[str] = []
        while heap and heap[0][0] < watermark_ms:
            due_ms, key = heapq.heappop(heap)
            if scheduled.get(key) == due_ms:
                del scheduled[key]
                out.append(key)
        return out


@dataclass
class ShardMemory:
    """Everything a shard's aggregation carries from one batch to the next."""

    watermark_ms: int | None = None
    visits: dict[str, list[View]] = field(default_factory=dict)
    conversations: dict[str, list[Message]] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    """Order id -> ``newest_ms * 16 + kinds`` (see ``ORDER_TABLE``)."""
    visits_encoded: dict[str, str] = field(default_factory=dict)
    """Each visitor's views as last stored (appending to it is cheaper than encoding)."""
    visits_due: DueKeys = field(default_factory=DueKeys)
    conversations_due: DueKeys = field(default_factory=DueKeys)
    complaints_due: DueKeys = field(default_factory=DueKeys)
    orders_due: DueKeys = field(default_factory=DueKeys)
    """When each key's figures or state next change by themselves (rebuilt on load)."""
    live_unsure: set[str] = field(default_factory=set)
    """Conversations loaded from the store whose live-set entries are written again at their
    first settle (an upgrade may have dropped them; writing them is idempotent)."""

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
            {k: int(v) for k, v in tables.get(ORDER_TABLE, {}).items()},
        )
        memory.visits_encoded = {
            k: v.decode() if isinstance(v, bytes) else v
            for k, v in tables.get(VISIT_TABLE, {}).items()
        }
        # Every stored key is due at once: the first batch settles it (an empty change
        # when nothing moved) and schedules it again.
        for key in memory.visits:
            memory.visits_due.schedule(key, -1)
        for key in memory.conversations:
            memory.conversations_due.schedule(key, -1)
        memory.live_unsure = set(memory.conversations)
        for key in memory.orders:
            memory.orders_due.schedule(key, -1)
        for key, complaint in memory.complaints.items():
            if complaint.opened_ms is None:  # a resolution waiting for its opening
                memory.complaints_due.schedule(key, -1)
        return memory
