"""What one partition batch adds to the stored state, with no reference to Redis.

Counter fields are named ``name`` or ``name|dimension=value``; the exporter
parses the same form (:func:`field`, :func:`parse_field`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache

from streams.common.keys import ANY, DERIVED_SETS, field, parse_field
from streams.common.timebuckets import DERIVED_DISTINCT, Bucket, Granularity
from streams.ingest.events import Rejection, RejectReason

Dims = tuple[tuple[str, str], ...]
"""Dimension names and values of one addition, in call order (empty values are skipped)."""


@lru_cache(maxsize=1 << 14)
def _fields(name: str, dims: Dims, total: str) -> tuple[str, ...]:
    """The total field and one field per non-empty dimension value."""
    return (total, *(field(name, d, v) for d, v in dims if v))


@dataclass
class BatchDelta:
    """Increments, distinct members, rankings and state changes of one batch."""

    _counts: dict[tuple[tuple[Bucket, ...], str, Dims], int] = dc_field(default_factory=dict)
    _members: dict[tuple[tuple[Bucket, ...], str, Dims], set[str]] = dc_field(default_factory=dict)
    _scores: dict[tuple[tuple[Bucket, ...], str], Counter[str]] = dc_field(default_factory=dict)
    """Pending additions keyed by the whole tuple of buckets an event falls in and,
    for counters and distinct sets, by all its dimension values at once.

    An event adds to five buckets (minute to month) and up to five fields (the
    total and one per dimension); keying by the tuples does one dictionary
    update instead of twenty-five, and the expansion per bucket and field runs
    once per batch and distinct key, when read.
    """
    _field_members: dict[tuple[tuple[Bucket, ...], str], set[str]] = dc_field(default_factory=dict)
    """Members added per field (:meth:`add_members`), keyed by the tuple of buckets."""
    _counters: Counter[tuple[Bucket, str]] = dc_field(default_factory=Counter)
    _distinct: defaultdict[tuple[Bucket, str], set[str]] = dc_field(
        default_factory=lambda: defaultdict(set)
    )
    _ranked: defaultdict[tuple[Bucket, str], Counter[str]] = dc_field(
        default_factory=lambda: defaultdict(Counter)
    )
    repeat_buyers: list[tuple[tuple[Bucket, ...], str]] = dc_field(default_factory=list)
    view_depth: dict[tuple[Bucket, ...], Counter[str]] = dc_field(default_factory=dict)
    """Page views per visitor, keyed by the hour and day buckets they fall in (only views
    within the allowed lateness: the live 跳失率, :func:`depth_periods`)."""
    depth_closed: list[Bucket] = dc_field(default_factory=list)
    """Hours and days no view within the allowed lateness can reach any more: their page
    views per visitor are dropped (the figures they gave stay)."""
    state_put: dict[tuple[str, str], str] = dc_field(default_factory=dict)
    state_del: set[tuple[str, str]] = dc_field(default_factory=set)
    zset_put: dict[tuple[str, str], int] = dc_field(default_factory=dict)
    zset_del: set[tuple[str, str]] = dc_field(default_factory=set)
    tallies: Counter[tuple[str, str]] = dc_field(default_factory=Counter)
    rejected: Counter[RejectReason] = dc_field(default_factory=Counter)
    seen_ids: defaultdict[int, set[str]] = dc_field(default_factory=lambda: defaultdict(set))
    """Accepted event ids by the minute of their event time (epoch second of its start).

    A copy sent again carries the same event time, so it is looked for in one
    minute's set only; a set expires a horizon after the last batch that wrote
    to it, which bounds their memory by the event rate times the horizon.
    """
    refused: list[tuple[int, Rejection]] = dc_field(default_factory=list)
    """Events the aggregation itself refused (a repeated order event), by their position
    in the batch: they go to the dead letters like the decoder's rejections."""
    consumed: int = 0
    late: int = 0
    too_late: int = 0
    """Events too far behind the watermark to join a visit or conversation."""
    retractions: int = 0
    """Visits and conversations whose figures, emitted before, a late event changed."""
    ended_visits: int = 0
    ended_conversations: int = 0
    """Visits and conversations an end of input closed (:meth:`KpiAggregator.end_input`)."""
    watermark_ms: int | None = None

    @property
    def accepted(self) -> int:
        """Events that changed a KPI."""
        return self.consumed - sum(self.rejected.values())

    @property
    def counters(self) -> Counter[tuple[Bucket, str]]:
        """Increments per (bucket, field)."""
        if self._counts:
            counters = self._counters
            get = counters.get  # dict.get: no Counter.__missing__ call per new key
            for (buckets, name, dims), n in self._counts.items():
                for name_ in _fields(name, dims, name):
                    for bucket in buckets:
                        key = (bucket, name_)
                        counters[key] = get(key, 0) + n
            self._counts.clear()
        return self._counters

    @property
    def distinct(self) -> defaultdict[tuple[Bucket, str], set[str]]:
        """Members to insert per (bucket, distinct set).

        Weeks and months only for the sets not in :data:`DERIVED_SETS`.
        """
        if self._members or self._field_members:
            distinct = self._distinct
            for buckets, name, members in self._pending_groups():
                for bucket in buckets:
                    distinct[(bucket, name)] |= members
            self._members.clear()
            self._field_members.clear()
        return self._distinct

    def _pending_groups(self) -> Iterator[tuple[tuple[Bucket, ...], str, set[str]]]:
        for (buckets, name, dims), members in self._members.items():
            stored = _stored_distinct(buckets) if name in DERIVED_SETS else buckets
            if stored:
                for name_ in _fields(name, dims, field(name, ANY, ANY)):
                    yield stored, name_, members
        for (buckets, name), members in self._field_members.items():
            stored = _stored_distinct(buckets) if parse_field(name)[0] in DERIVED_SETS else buckets
            if stored:
                yield stored, name, members

    def distinct_groups(self) -> Iterator[tuple[tuple[Bucket, ...], str, set[str]]]:
        """Members per tuple of buckets and set name, without expanding them per bucket.

        A writer inserts each group's members into every bucket of the tuple; a
        bucket and set may appear in several groups (an hour holds many minutes,
        a channel many devices), which is harmless for a set or a HyperLogLog.
        """
        yield from self._pending_groups()
        for (bucket, name), members in self._distinct.items():
            yield (bucket,), name, members

    def ranked_groups(self) -> Iterator[tuple[tuple[Bucket, ...], str, Counter[str]]]:
        """Score increments per tuple of buckets and ranking, not expanded per bucket."""
        for (buckets, name), scores in self._scores.items():
            yield buckets, name, scores
        for (bucket, name), scores in self._ranked.items():
            yield (bucket,), name, scores

    @property
    def ranked(self) -> defaultdict[tuple[Bucket, str], Counter[str]]:
        """Score increments per (bucket, ranking) and member."""
        if self._scores:
            ranked = self._ranked
            for (buckets, name), scores in self._scores.items():
                for bucket in buckets:
                    ranked[(bucket, name)].update(scores)
            self._scores.clear()
        return self._ranked

    def count(self, buckets: tuple[Bucket, ...], name: str, n: int = 1, **dims: str) -> None:
        """Add ``n`` to the total ``name`` and to ``name`` per given dimension."""
        if buckets:
            key = (buckets, name, tuple(dims.items()))
            counts = self._counts
            counts[key] = counts.get(key, 0) + n

    def count_dims(self, buckets: tuple[Bucket, ...], name: str, n: int, dims: Dims) -> None:
        """:meth:`count` with the dimensions as (name, value) pairs."""
        if buckets:
            key = (buckets, name, dims)
            counts = self._counts
            counts[key] = counts.get(key, 0) + n

    def count_field(self, buckets: tuple[Bucket, ...], name: str, n: int) -> None:
        """Add ``n`` to one counter field (a total, or ``name|dimension=value``) per bucket.

        For increments already grouped (:mod:`streams.aggregators.columns`): unlike
        :meth:`count`, nothing is added to a total.
        """
        counters = self._counters
        get = counters.get
        for bucket in buckets:
            key = (bucket, name)
            counters[key] = get(key, 0) + n

    def add_members(self, buckets: tuple[Bucket, ...], name: str, members: set[str]) -> None:
        """Insert ``members`` into one distinct set field (``name|dimension=value``).

        For members already grouped; ``members`` may be kept (not copied) by the delta.
        """
        if buckets and members:
            key = (buckets, name)
            found = self._field_members.get(key)
            if found is None:
                self._field_members[key] = members
            else:
                found |= members

    def add_distinct(
        self, buckets: tuple[Bucket, ...], name: str, member: str, **dims: str
    ) -> None:
        """Insert ``member`` into the distinct set ``name`` (overall and per dimension)."""
        if buckets:
            key = (buckets, name, tuple(dims.items()))
            found = self._members.get(key)
            if found is None:
                self._members[key] = {member}
            else:
                found.add(member)

    def add_distinct_dims(
        self, buckets: tuple[Bucket, ...], name: str, member: str, dims: Dims
    ) -> None:
        """:meth:`add_distinct` with the dimensions as (name, value) pairs."""
        if buckets:
            key = (buckets, name, dims)
            found = self._members.get(key)
            if found is None:
                self._members[key] = {member}
            else:
                found.add(member)

    def rank(self, buckets: tuple[Bucket, ...], name: str, member: str, n: int = 1) -> None:
        """Add ``n`` to ``member``'s score in the ranking ``name``."""
        if member and buckets:
            key = (buckets, name)
            scores = self._scores.get(key)
            if scores is None:
                scores = self._scores[key] = Counter()
            scores[member] += n

    def rank_counts(self, buckets: tuple[Bucket, ...], name: str, counts: Counter[str]) -> None:
        """Add each member's count to its score in the ranking ``name`` ("" is skipped)."""
        counts.pop("", None)
        if counts and buckets:
            key = (buckets, name)
            scores = self._scores.get(key)
            if scores is None:
                self._scores[key] = counts
            else:
                scores.update(counts)

    def count_view(self, periods: tuple[Bucket, ...], visitor: str) -> None:
        """One more page view of ``visitor`` in each of ``periods`` (its hour and day)."""
        views = self.view_depth.get(periods)
        if views is None:
            views = self.view_depth[periods] = Counter()
        views[visitor] += 1

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


@lru_cache(maxsize=1 << 12)
def _stored_distinct(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """The buckets whose distinct sets are stored (weeks and months are read from days)."""
    return tuple(b for b in buckets if b.granularity not in DERIVED_DISTINCT)


@lru_cache(maxsize=1 << 12)
def coarse(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """Buckets of an hour or longer (rankings and page tables are not kept per minute)."""
    return tuple(b for b in buckets if b.granularity is not Granularity.MINUTE)


DEPTH_PERIODS = (Granularity.HOUR, Granularity.DAY)
"""The periods whose visitors are counted by page views (the live 跳失率)."""


@lru_cache(maxsize=1 << 12)
def depth_periods(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """The hour and day buckets of a tuple of buckets (those still retained)."""
    return tuple(b for b in buckets if b.granularity in DEPTH_PERIODS)


@lru_cache(maxsize=1 << 12)
def days(buckets: tuple[Bucket, ...]) -> tuple[Bucket, ...]:
    """The day bucket of a tuple of buckets (empty if it is no longer retained)."""
    return tuple(b for b in buckets if b.granularity is Granularity.DAY)
