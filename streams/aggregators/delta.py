"""What one partition batch adds to the stored state, with no reference to Redis.

Counter fields are named ``name`` or ``name|dimension=value``; the exporter
parses the same form (:func:`field`, :func:`parse_field`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache

from streams.events import RejectReason
from streams.timebuckets import Bucket, Granularity

ANY = "_all"
"""Dimension value of the distinct sets that ignore the dimension (UV overall)."""


@lru_cache(maxsize=1 << 16)
def field(name: str, dimension: str = "", value: str = "") -> str:
    """Counter field ``name`` or ``name|dimension=value`` (cached: label values are bounded)."""
    return f"{name}|{dimension}={value}" if dimension else name


def parse_field(text: str) -> tuple[str, str, str]:
    """Inverse of :func:`field`: (name, dimension, value), dimension "" for totals."""
    name, sep, rest = text.partition("|")
    if not sep:
        return name, "", ""
    dimension, _, value = rest.partition("=")
    return name, dimension, value


@dataclass
class BatchDelta:
    """Increments, distinct members, rankings and state changes of one batch."""

    counters: Counter[tuple[Bucket, str]] = dc_field(default_factory=Counter)
    distinct: defaultdict[tuple[Bucket, str], set[str]] = dc_field(
        default_factory=lambda: defaultdict(set)
    )
    ranked: defaultdict[tuple[Bucket, str], Counter[str]] = dc_field(
        default_factory=lambda: defaultdict(Counter)
    )
    repeat_buyers: list[tuple[tuple[Bucket, ...], str]] = dc_field(default_factory=list)
    state_put: dict[tuple[str, str], str] = dc_field(default_factory=dict)
    state_del: set[tuple[str, str]] = dc_field(default_factory=set)
    zset_put: dict[tuple[str, str], int] = dc_field(default_factory=dict)
    zset_del: set[tuple[str, str]] = dc_field(default_factory=set)
    tallies: Counter[tuple[str, str]] = dc_field(default_factory=Counter)
    rejected: Counter[RejectReason] = dc_field(default_factory=Counter)
    seen_ids: defaultdict[int, set[str]] = dc_field(default_factory=lambda: defaultdict(set))
    """Accepted event ids by UTC hour of their event time (for duplicate detection)."""
    consumed: int = 0
    late: int = 0
    watermark_ms: int | None = None

    @property
    def accepted(self) -> int:
        """Events that changed a KPI."""
        return self.consumed - sum(self.rejected.values())

    def count(self, buckets: tuple[Bucket, ...], name: str, n: int = 1, **dims: str) -> None:
        """Add ``n`` to the total ``name`` and to ``name`` per given dimension."""
        for bucket in buckets:
            self.counters[(bucket, name)] += n
            for dimension, value in dims.items():
                if value:
                    self.counters[(bucket, field(name, dimension, value))] += n

    def add_distinct(
        self, buckets: tuple[Bucket, ...], name: str, member: str, **dims: str
    ) -> None:
        """Insert ``member`` into the distinct set ``name`` (overall and per dimension)."""
        for bucket in buckets:
            self.distinct[(bucket, field(name, ANY, ANY))].add(member)
            for dimension, value in dims.items():
                if value:
                    self.distinct[(bucket, field(name, dimension, value))].add(member)

    def rank(self, buckets: tuple[Bucket, ...], name: str, member: str, n: int = 1) -> None:
        """Add ``n`` to ``member``'s score in the ranking ``name``."""
        if member:
            for bucket in buckets:
                self.ranked[(bucket, name)][member] += n

    def put_state(self, table: str, key: str, value: str) -> None:
        """Store a state entry (a session, a conversation)."""
        self.state_del.discard((table, key))
        self.state_put[(table, key)] = value

    def delete_state(self, table: str, key: str) -> None:
        """Forget a state entry."""
        self.state_put.pop((table, key), None)
        self.state_del.add((table, key))

    def put_zset(self, name: str, member: str, score: int) -> None:
        """Set ``member``'s score in the sorted set ``name`` (e.g. who is waiting since when)."""
        self.zset_del.discard((name, member))
        self.zset_put[(name, member)] = score

    def delete_zset(self, name: str, member: str) -> None:
        """Remove ``member`` from the sorted set ``name``."""
        self.zset_put.pop((name, member), None)
        self.zset_del.add((name, member))


def coarse(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """Buckets of an hour or longer (rankings and page tables are not kept per minute)."""
    return tuple(b for b in buckets if b.granularity is not Granularity.MINUTE)
