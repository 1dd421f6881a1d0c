"""Per-shard state that outlives a batch: open sessions, conversations, complaints.

The worker keeps it in memory for the partitions it owns and persists every
change in the same atomic apply as the KPI increments (state tables in Redis),
so that a restarted or rebalanced worker reloads exactly what was applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

SESSION_TABLE = "session"
CONVERSATION_TABLE = "conversation"
COMPLAINT_TABLE = "complaint"
STATE_TABLES = (SESSION_TABLE, CONVERSATION_TABLE, COMPLAINT_TABLE)
WAITING_ZSET = "waiting"
AGENT_OPEN_TALLY = "agent_open"


@dataclass(slots=True)
class Session:
    """A visitor's open session (cut by inactivity, in event time)."""

    start_ms: int
    last_ms: int
    views: int
    page: str
    page_type: str
    channel: str
    device: str
    campaign: str

    def encode(self) -> str:
        """Compact text for the state table."""
        return orjson.dumps(
            (
                self.start_ms,
                self.last_ms,
                self.views,
                self.page,
                self.page_type,
                self.channel,
                self.device,
                self.campaign,
            )
        ).decode()

    @classmethod
    def decode(cls, text: str | bytes) -> Session:
        """Inverse of :meth:`encode`."""
        return cls(*orjson.loads(text))


@dataclass(slots=True)
class Conversation:
    """An open customer-service conversation."""

    opened_ms: int
    last_ms: int
    first_customer_ms: int | None = None
    waiting_since_ms: int | None = None
    responded: bool = False
    agent: str = ""

    def encode(self) -> str:
        """Compact text for the state table."""
        return orjson.dumps(
            (
                self.opened_ms,
                self.last_ms,
                self.first_customer_ms,
                self.waiting_since_ms,
                self.responded,
                self.agent,
            )
        ).decode()

    @classmethod
    def decode(cls, text: str | bytes) -> Conversation:
        """Inverse of :meth:`encode`."""
        return cls(*orjson.loads(text))


@dataclass
class ShardMemory:
    """Everything a shard's aggregation carries from one batch to the next."""

    watermark_ms: int | None = None
    sessions: dict[str, Session] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    complaints: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_tables(
        cls, watermark_ms: int | None, tables: Mapping[str, Mapping[str, str | bytes]]
    ) -> ShardMemory:
        """Rebuild from the state tables stored in Redis."""
        return cls(
            watermark_ms,
            {k: Session.decode(v) for k, v in tables.get(SESSION_TABLE, {}).items()},
            {k: Conversation.decode(v) for k, v in tables.get(CONVERSATION_TABLE, {}).items()},
            {k: int(v) for k, v in tables.get(COMPLAINT_TABLE, {}).items()},
        )
