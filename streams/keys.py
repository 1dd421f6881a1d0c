"""Every Redis key the service reads or writes is built and parsed here.

Layout (``P`` is the configured prefix, ``S`` a shard: ``<topic>.<partition>``)::

    P:shards                          set     every shard that has applied a batch
    P:{S}:applied                     string  last Kafka offset applied for the shard
    P:{S}:watermark                   string  newest event time (epoch ms) seen on the shard
    P:{S}:ops                         hash    consumed, late, rejected:<reason>, last_apply_ms
    P:{S}:pv:<g>:<start>              hash    channel -> page views in the bucket
    P:{S}:uv:<g>:<start>:<channel>    HLL     visitor ids in the bucket (channel ``_all``: any)

``<g>`` is ``m``/``h``/``d`` and ``<start>`` the bucket's start in epoch seconds.
The ``{S}`` hash tag keeps all keys of one shard in one Redis Cluster slot, so
one atomic apply per partition batch touches one slot. A shard's visitors never
appear on another shard (topics are keyed by visitor), so distinct counts add up
across shards.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.timebuckets import Bucket, Granularity

ALL_CHANNELS = "_all"


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

    def pageviews(self, shard: Shard, bucket: Bucket) -> str:
        """Hash of page views per channel in ``bucket``."""
        return f"{self._tag(shard)}:pv:{bucket.granularity.value}:{bucket.start}"

    def visitors(self, shard: Shard, bucket: Bucket, channel: str) -> str:
        """HyperLogLog of visitors of ``channel`` (or :data:`ALL_CHANNELS`) in ``bucket``."""
        return f"{self._tag(shard)}:uv:{bucket.granularity.value}:{bucket.start}:{channel}"

    def parse_bucket_key(self, key: str) -> tuple[Shard, str, Bucket, str | None]:
        """Split a ``pv``/``uv`` key into shard, kind, bucket and channel (``None`` for pv)."""
        head = f"{self.prefix}:{{"
        if not key.startswith(head):
            raise ValueError(f"key outside prefix {self.prefix!r}: {key!r}")
        shard_id, sep, rest = key[len(head) :].partition("}:")
        if not sep:
            raise ValueError(f"key without shard tag: {key!r}")
        parts = rest.split(":")
        if len(parts) == 3 and parts[0] == "pv":
            kind, gran, start, channel = parts[0], parts[1], parts[2], None
        elif len(parts) == 4 and parts[0] == "uv":
            kind, gran, start, channel = parts
        else:
            raise ValueError(f"not a bucket key: {key!r}")
        return Shard.parse(shard_id), kind, Bucket(Granularity(gran), int(start)), channel


OPS_CONSUMED = "consumed"
OPS_LATE = "late"
OPS_LAST_APPLY_MS = "last_apply_ms"
OPS_REJECTED_PREFIX = "rejected:"
