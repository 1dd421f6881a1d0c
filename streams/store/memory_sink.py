"""The store's in-memory twin: what :class:`streams.store.sink.RedisSink` does to Redis, in dicts.

A dry run (``kpi replay --dry-run``) and tests feed the same batch processor, with
the same offset guard and the same duplicate check (event ids expire as the script
makes them), through this twin instead of Redis; ``tests/integration/test_memory_sink.py``
applies the same batches to both and compares what they hold. Two differences:
buckets never expire, and distinct sets are exact sets where Redis keeps HyperLogLogs,
so a dry run holds every member of every stored bucket level (minute, hour and day;
weeks and months only for the sets not read from days) and dimension in memory: size
it for a day or a week of logs, not an archive.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from streams.aggregators import BatchDelta, ShardMemory
from streams.aggregators import field as kpi_field
from streams.common.keys import (
    OPS_CONSUMED,
    OPS_LAST_APPLY_MS,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    OPS_RETRACTIONS,
    OPS_TOO_LATE,
    RANKING_TRIMMED,
    REPEAT_FIELD,
    REPEAT_MAX,
    Shard,
    closed_writes,
)
from streams.common.timebuckets import Bucket, BucketClock
from streams.store.sink import (
    CAPS,
    RANKING_CAP,
    Applied,
    StoredShard,
    closed_granularities,
    view_depth_bin,
)


@dataclass
class ShardStore:
    """Everything the store keeps for one shard."""

    applied: int | None = None
    watermark_ms: int | None = None
    ops: Counter[str] = field(default_factory=Counter)
    counters: Counter[tuple[Bucket, str]] = field(default_factory=Counter)
    distinct: defaultdict[tuple[Bucket, str], set[str]] = field(
        default_factory=lambda: defaultdict(set)
    )
    ranked: defaultdict[tuple[Bucket, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    buyer_orders: defaultdict[Bucket | None, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Paid orders per buyer, per period bucket (None: lifetime)."""
    visitor_views: defaultdict[Bucket, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    """Page views per visitor, per open hour and day (the live 跳失率)."""
    lifetime: Counter[str] = field(default_factory=Counter)
    """The lifetime repeat-purchase distribution (``repeat_buyers|orders=<n>``)."""
    tables: defaultdict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    zsets: defaultdict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    tallies: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seen: defaultdict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    seen_until: dict[int, float] = field(default_factory=dict)
    """When each minute's event ids expire (epoch seconds), as the script's EXPIRE sets."""


class MemorySink:
    """Same interface and semantics as :class:`streams.store.sink.RedisSink`, in memory."""

    def __init__(self, dedupe_horizon_s: int = 600, clock: BucketClock | None = None) -> None:
        """Hold nothing yet.

        ``clock`` judges which buckets had ended at each apply, as the Redis sink does
        (``closed_writes:<g>`` in the ops); without it those counts are not kept.
        """
        self.clock = clock
        self.shards: defaultdict[Shard, ShardStore] = defaultdict(ShardStore)
        self.dedupe_horizon_s = dedupe_horizon_s
        self.ranking_cap = RANKING_CAP
        self.caps = dict(CAPS)

    async def load(self, shard: Shard) -> StoredShard:
        """The shard's applied offset and memory, as a restarted worker would load them."""
        store = self.shards[shard]
        return StoredShard(store.applied, ShardMemory.from_tables(store.watermark_ms, store.tables))

    async def apply(
        self, shard: Shard, expected: int | None, last_offset: int, delta: BatchDelta, now_ms: int
    ) -> Applied:
        """Apply ``delta`` unless the stored offset differs from ``expected``.

        Nothing is written either if one of the batch's event ids was accepted before;
        those ids are returned.
        """
        store = self.shards[shard]
        if store.applied != expected:
            return Applied(False, store.applied)
        now_s = now_ms / 1000
        for minute in [m for m, until in store.seen_until.items() if until <= now_s]:
            del store.seen_until[minute]  # expired, as Redis would have dropped the set
            store.seen.pop(minute, None)
        duplicates = frozenset(
            i for minute, ids in delta.seen_ids.items() for i in ids if i in store.seen[minute]
        )
        if duplicates:
            return Applied(False, store.applied, duplicates)
        for minute, ids in delta.seen_ids.items():
            store.seen[minute] |= ids
            store.seen_until[minute] = now_s + 60 + self.dedupe_horizon_s
        store.counters.update(delta.counters)
        for key, members in delta.distinct.items():
            store.distinct[key] |= members
        for buckets, name, scores in delta.ranked_groups():
            cap = self.caps.get(name, self.ranking_cap)
            for bucket in buckets:  # as the script: each group's increments, then the cap
                ranking = store.ranked[(bucket, name)]
                ranking.update(scores)
                if len(ranking) > cap:  # the lowest (score, member) go; their sum is kept
                    lowest = sorted(ranking.items(), key=lambda kv: (kv[1], kv[0]))
                    dropped = lowest[: len(ranking) - cap]
                    store.counters[(bucket, kpi_field(RANKING_TRIMMED, "ranking", name))] += sum(
                        n for _, n in dropped
                    )
                    for member, _ in dropped:
                        del ranking[member]
        prefix = kpi_field(REPEAT_FIELD, "orders", "")
        for periods, buyer in delta.repeat_buyers:
            up, down = _one_more_paid(store.buyer_orders[None], buyer)
            store.lifetime[prefix + up] += 1
            if down:
                store.lifetime[prefix + down] -= 1
            for bucket in periods:
                up, down = _one_more_paid(store.buyer_orders[bucket], buyer)
                store.counters[(bucket, prefix + up)] += 1
                if down:
                    store.counters[(bucket, prefix + down)] -= 1
        for periods, views in delta.view_depth.items():
            for bucket in periods:  # as the script's V op
                tally = store.visitor_views[bucket]
                for visitor, n in views.items():
                    before = tally[visitor]
                    tally[visitor] = before + n
                    if before:
                        store.counters[(bucket, view_depth_bin(before))] -= 1
                    store.counters[(bucket, view_depth_bin(before + n))] += 1
        for bucket in delta.depth_closed:
            store.visitor_views.pop(bucket, None)
        for (table, row), value in delta.state_put.items():
            store.tables[table][row] = value
        for table, row in delta.state_del:
            store.tables[table].pop(row, None)
        for (name, member), score in delta.zset_put.items():
            store.zsets[name][member] = score
        for name, member in delta.zset_del:
            store.zsets[name].pop(member, None)
        for (name, member), n in delta.tallies.items():
            if n:
                store.tallies[name][member] += n
        store.ops[OPS_CONSUMED] += delta.consumed
        if self.clock is not None:
            touched = {bucket for bucket, _ in delta.counters} | {b for b, _ in delta.distinct}
            touched |= {b for buckets, _, _ in delta.ranked_groups() for b in buckets}
            touched |= {b for periods, _ in delta.repeat_buyers for b in periods}
            touched |= {b for periods in delta.view_depth for b in periods}
            for granularity in closed_granularities(touched, self.clock, now_ms):
                store.ops[closed_writes(granularity)] += 1
        for name, n in ((OPS_LATE, delta.late), (OPS_TOO_LATE, delta.too_late)):
            if n:
                store.ops[name] += n
        if delta.retractions:
            store.ops[OPS_RETRACTIONS] += delta.retractions
        for reason, n in delta.rejected.items():
            store.ops[OPS_REJECTED_PREFIX + reason.value] += n
        if delta.watermark_ms is not None:
            store.watermark_ms = delta.watermark_ms
        store.ops[OPS_LAST_APPLY_MS] = now_ms
        store.applied = last_offset
        return Applied(True, last_offset)


def _one_more_paid(orders: Counter[str], buyer: str) -> tuple[str, str]:
    """Count one more paid order of ``buyer``, as the apply script's B op does.

    Returns the bin they move into and the one they leave ("" for none).
    """
    orders[buyer] += 1
    n = orders[buyer]
    return str(min(n, REPEAT_MAX)), str(min(n - 1, REPEAT_MAX)) if n > 1 else ""
