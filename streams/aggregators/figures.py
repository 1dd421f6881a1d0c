"""What one visit or conversation contributes to the KPIs, so it can be retracted.

A visit's or a conversation's figures are a function of its events in event-time
order and of the watermark (which closes it). When a late event changes that list,
or the watermark closes it, the aggregator computes the figures before and after
and emits only the difference: negative increments withdraw what was emitted
before (Flink's accumulating-and-retracting panes; Kafka Streams' session-window
updates). Counters and ranking scores add up, so the stored totals end equal to
the figures of the final events, whatever their arrival order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from streams.aggregators.delta import BatchDelta, Dims
from streams.common.timebuckets import Bucket


class Figures:
    """Counter increments and ranking scores, keyed like :class:`BatchDelta`'s."""

    __slots__ = ("counts", "ranks")

    def __init__(self) -> None:
        self.counts: dict[tuple[tuple[Bucket, ...], str, Dims], int] = {}
        self.ranks: dict[tuple[tuple[Bucket, ...], str, str], int] = {}

    def count(self, buckets: tuple[Bucket, ...], name: str, n: int, dims: Dims = ()) -> None:
        """Add ``n`` to the counter ``name`` in ``buckets``, in total and per dimension.

        ``dims``: (dimension, value) pairs, in the order :meth:`BatchDelta.count` keeps.
        """
        if buckets:
            key = (buckets, name, dims)
            counts = self.counts
            counts[key] = counts.get(key, 0) + n

    def rank(self, buckets: tuple[Bucket, ...], name: str, member: str, n: int = 1) -> None:
        """Add ``n`` to ``member``'s score in the ranking ``name``."""
        if member and buckets:
            key = (buckets, name, member)
            self.ranks[key] = self.ranks.get(key, 0) + n


K = TypeVar("K", bound=tuple[object, ...])


def _changes(before: dict[K, int], after: dict[K, int]) -> Iterator[tuple[K, int]]:
    """Each key's ``after - before``, where it is not zero."""
    for key, n in after.items():
        if n != before.get(key, 0):
            yield key, n - before.get(key, 0)
    for key, n in before.items():
        if n and key not in after:
            yield key, -n


def emit_difference(delta: BatchDelta, before: Figures, after: Figures) -> bool:
    """Add ``after - before`` to ``delta``.

    Returns True when something emitted before is withdrawn (a retraction: some
    increment is negative).
    """
    withdrawn = False
    for (buckets, name, dims), change in _changes(before.counts, after.counts):
        delta.count_dims(buckets, name, change, dims)
        withdrawn = withdrawn or change < 0
    for (buckets, name, member), change in _changes(before.ranks, after.ranks):
        delta.rank(buckets, name, member, change)
        withdrawn = withdrawn or change < 0
    return withdrawn
