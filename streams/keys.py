"""Every Redis key the service reads or writes is built here.

Layout (``P`` is the configured prefix, ``S`` a shard: ``<topic>.<partition>``,
``<g>`` a granularity ``m``/``h``/``d``/``w``/``M`` and ``<t>`` a bucket start in
epoch seconds)::

    P:shards                     set     every shard that has applied a batch
    P:{S}:applied                string  last Kafka offset applied for the shard
    P:{S}:watermark              string  newest event time (epoch ms) seen on the shard
    P:{S}:ops                    hash    consumed, late, too_late, retractions, rejected:<reason>,
                                         last_apply_ms
    P:{S}:b:<g>:<t>              hash    counters of the bucket: ``name`` or ``name|dim=value``
    P:{S}:u:<g>:<t>:<name>       HLL     distinct members (``name|dim=value``, ``_all`` overall)
    P:{S}:r:<g>:<t>:<name>       zset    rankings (pages, products, ...), trimmed to a cap
    P:{S}:bp:<g>:<t>             hash    buyer -> paid orders in the bucket (repeat purchase)
    P:{S}:t:<name>               hash    running tallies: buyer_paid, repeat_lifetime
    P:{S}:s:<table>              hash    state: visit (a visitor's views), chat (a conversation's
                                         messages), complaint (opened,resolved ms), order
                                         (order id -> newest ms * 16 + kinds counted)
    P:{S}:z:<name>               zset    live sets: waits (waiting since ms, US, conversation),
                                         holds (agent, US, conversation); US is the unit
                                         separator 0x1f; scored by when it ends (ms)
    P:{S}:seen:<minute>          set     event ids accepted with event time in that minute
                                         (duplicate detection; expire after the horizon)
    P:{S}:scratch                zset    a batch's ranking increments while the apply merges
                                         them (deleted before the apply returns)

Bucket keys expire at bucket end + retention. The ``{S}`` hash tag keeps all
keys of one shard in one Redis Cluster slot, so one atomic apply per
partition batch touches one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.timebuckets import Bucket


@dataclass(frozen=True, slots=True, order=True)
class Shard:
    """The unit of atomic apply: one partition of one topic."""

    topic: str
    partition: int

    @property
    def id(self) -> str:
        """Stable text form, ``<topic>.<partition>``."""
        return f"{self.topic}.{self.partition}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Inverse of :attr:`id`; raises ``ValueError`` on anything else."""
        topic, sep, partition = text.rpartition(".")
        if not sep or not topic or not partition.isdigit():
            raise ValueError(f"not a shard id: {text!r}")
        return cls(topic, int(partition))


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds keys under one prefix."""

    prefix: str

    def shards(self) -> str:
        """Set of shard ids that have data."""
        return f"{self.prefix}:shards"

    def _tag(self, shard: Shard) -> str:
        return f"{self.prefix}:{{{shard.id}}}"

    def applied(self, shard: Shard) -> str:
        """Last applied offset of ``shard``."""
        return f"{self._tag(shard)}:applied"

    def watermark(self, shard: Shard) -> str:
        """Newest event time seen on ``shard``."""
        return f"{self._tag(shard)}:watermark"

    def ops(self, shard: Shard) -> str:
        """Operational counters of ``shard``."""
        return f"{self._tag(shard)}:ops"

    def counters(self, shard: Shard, bucket: Bucket) -> str:
        """Hash of every counter of ``bucket``."""
        return f"{self._tag(shard)}:b:{bucket.granularity.value}:{bucket.start}"

    def distinct(self, shard: Shard, bucket: Bucket, name: str) -> str:
        """HyperLogLog ``name`` of ``bucket``."""
        return f"{self._tag(shard)}:u:{bucket.granularity.value}:{bucket.start}:{name}"

    def ranking(self, shard: Shard, bucket: Bucket, name: str) -> str:
        """Sorted set ``name`` of ``bucket``."""
        return f"{self._tag(shard)}:r:{bucket.granularity.value}:{bucket.start}:{name}"

    def buyer_period(self, shard: Shard, bucket: Bucket) -> str:
        """Paid orders per buyer within ``bucket``."""
        return f"{self._tag(shard)}:bp:{bucket.granularity.value}:{bucket.start}"

    def tally(self, shard: Shard, name: str) -> str:
        """A running tally hash (no bucket)."""
        return f"{self._tag(shard)}:t:{name}"

    def state(self, shard: Shard, table: str) -> str:
        """A state table of ``shard``."""
        return f"{self._tag(shard)}:s:{table}"

    def seen(self, shard: Shard, minute_start: int) -> str:
        """Event ids accepted on ``shard`` whose event time falls in the minute."""
        return f"{self._tag(shard)}:seen:{minute_start}"

    def scratch(self, shard: Shard) -> str:
        """Scratch key of ``shard``'s apply (in its slot; empty between applies)."""
        return f"{self._tag(shard)}:scratch"

    def live_set(self, shard: Shard, name: str) -> str:
        """A live sorted set of ``shard``."""
        return f"{self._tag(shard)}:z:{name}"

    def obsolete(self, shard: Shard) -> list[str]:
        """Keys of ``shard`` that earlier versions wrote and this one never reads.

        The running summaries kept before the allowed lateness (one session per visitor,
        one summary per conversation), which cannot be turned back into events, and the
        live sets without the time each conversation ends (``waiting``, ``agent_open``).
        """
        tag = self._tag(shard)
        return [
            f"{tag}:s:session",
            f"{tag}:s:conversation",
            f"{tag}:z:waiting",
            f"{tag}:t:agent_open",
        ]


OPS_CONSUMED = "consumed"
OPS_LATE = "late"
OPS_TOO_LATE = "too_late"
OPS_RETRACTIONS = "retractions"
OPS_LAST_APPLY_MS = "last_apply_ms"
OPS_REJECTED_PREFIX = "rejected:"
BUYER_PAID_TALLY = "buyer_paid"
REPEAT_LIFETIME_TALLY = "repeat_lifetime"
REPEAT_FIELD = "repeat_buyers"
"""Counter name of the repeat-purchase distribution (``repeat_buyers|orders=1`` .. ``=6``)."""
REPEAT_MAX = 6
