"""Every Redis key the service reads or writes is built here.

Layout (``P`` is the configured prefix, ``S`` a shard: ``<topic>.<partition>``,
``<g>`` a granularity ``m``/``h``/``d``/``w``/``M`` and ``<t>`` a bucket start in
epoch seconds)::

    P:shards                     set     every shard that has applied a batch
    P:{S}:applied                string  last Kafka offset applied for the shard
    P:{S}:watermark              string  newest event time (epoch ms) seen on the shard
    P:{S}:ops                    hash    consumed, late, too_late, retractions, rejected:<reason>,
                                         last_apply_ms, closed_writes:<g>
    P:{S}:b:<g>:<t>              hash    counters of the bucket: ``name`` or ``name|dim=value``;
                                         ``ranking_trimmed|ranking=<name>``: the scores a ranking
                                         of the bucket lost to its cap (the apply script)
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
    P:{S}:m:<g>:<t>:<t2>:<v>:<name>
                                 HLL     the exporter's union of the shard's HLLs ``name`` of
                                         the closed buckets <t>..<t2> of size <g>, merged under
                                         the shard's count ``closed_writes:<g>`` = <v> (the
                                         only keys the exporter writes; they expire)

Bucket keys expire at bucket end + retention. The ``{S}`` hash tag keeps all
keys of one shard in one Redis Cluster slot, so one atomic apply per
partition batch touches one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from streams.common.timebuckets import Bucket, Granularity


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

    def meta(self) -> str:
        """Hash of what the data under the prefix was written with (its time zone)."""
        return f"{self.prefix}:meta"

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

    def distinct_prefix(self, shard: Shard, bucket: Bucket) -> str:
        """``distinct(shard, bucket, name)`` is this + ``name`` (readers build many)."""
        return self.distinct(shard, bucket, "")

    def ranking(self, shard: Shard, bucket: Bucket, name: str) -> str:
        """Sorted set ``name`` of ``bucket``."""
        return f"{self._tag(shard)}:r:{bucket.granularity.value}:{bucket.start}:{name}"

    def buyer_period(self, shard: Shard, bucket: Bucket) -> str:
        """Paid orders per buyer within ``bucket``."""
        return f"{self._tag(shard)}:bp:{bucket.granularity.value}:{bucket.start}"

    def visitor_period(self, shard: Shard, bucket: Bucket) -> str:
        """Page views per visitor within ``bucket`` (an hour or a day), while it is open.

        Dropped once the watermark is the allowed lateness past the bucket's end
        (:data:`VIEW_DEPTH_FIELD` keeps the figures).
        """
        return f"{self._tag(shard)}:vp:{bucket.granularity.value}:{bucket.start}"

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

    def merged(self, shard: Shard, parts: Sequence[Bucket], version: int, name: str) -> str:
        """The exporter's union of ``shard``'s HyperLogLogs ``name`` of the closed ``parts``.

        ``parts`` are consecutive buckets of one size; ``version`` is the shard's count of
        batches written into ended buckets of that size when the union was taken, so a
        late write into one of them makes a new key rather than a stale one.
        """
        return self.merged_prefix(shard, parts, version) + name

    def merged_prefix(self, shard: Shard, parts: Sequence[Bucket], version: int) -> str:
        """``merged(shard, parts, version, name)`` is this + ``name``."""
        g = parts[0].granularity.value
        return f"{self._tag(shard)}:m:{g}:{parts[0].start}:{parts[-1].start}:{version}:"

    def live_set(self, shard: Shard, name: str) -> str:
        """A live sorted set of ``shard``."""
        return f"{self._tag(shard)}:z:{name}"

    def parse(self, key: str) -> ParsedKey:
        """Inverse of the builders above; raises ``ValueError`` on a key of another layout."""
        head = f"{self.prefix}:{{"
        if key == self.shards():
            return ParsedKey("shards", None)
        if not key.startswith(head) or "}:" not in key:
            raise ValueError(f"not a key of prefix {self.prefix!r}: {key!r}")
        shard_id, _, rest = key[len(head) :].partition("}:")
        shard = Shard.parse(shard_id)
        kind, _, tail = rest.partition(":")
        if kind in ("b", "bp", "vp", "u", "r"):
            g, _, tail = tail.partition(":")
            start, _, name = tail.partition(":")
            if not start.lstrip("-").isdigit():
                raise ValueError(f"no bucket start in {key!r}")
            bucket = Bucket(Granularity(g), int(start))
            return ParsedKey(_KINDS[kind], shard, bucket, name)
        if kind == "m":
            g, first, last, version, name = [*tail.split(":", 4), "", "", "", ""][:5]
            if not all(x.lstrip("-").isdigit() for x in (first, last, version)) or not name:
                raise ValueError(f"not a merged key: {key!r}")
            return ParsedKey("merged", shard, Bucket(Granularity(g), int(first)), name)
        if kind in ("t", "s", "z", "seen"):
            return ParsedKey(_KINDS[kind], shard, None, tail)
        if kind in ("applied", "watermark", "ops", "scratch") and not tail:
            return ParsedKey(kind, shard)
        raise ValueError(f"unknown key kind {kind!r} in {key!r}")

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


_KINDS = {
    "b": "counters",
    "bp": "buyer_period",
    "vp": "visitor_period",
    "u": "distinct",
    "r": "ranking",
    "t": "tally",
    "s": "state",
    "z": "live_set",
    "seen": "seen",
}


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key taken apart.

    ``kind`` names the :class:`KeyLayout` method that builds it; ``name`` is the distinct
    set, ranking, tally, table or live set (the minute of a ``seen`` key).
    """

    kind: str
    shard: Shard | None
    bucket: Bucket | None = None
    name: str = ""


OPS_CONSUMED = "consumed"
OPS_CLOSED_PREFIX = "closed_writes:"


def closed_writes(granularity: Granularity) -> str:
    """Ops field: the shard's batches that wrote into an ended ``granularity`` bucket.

    Ended at the apply's wall clock: late events, visits ending after their start
    bucket, catch-up. A cache of closed periods of that size holds while no shard's
    count moves.
    """
    return OPS_CLOSED_PREFIX + granularity.value


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
CART_OR_ORDER = "carters_or_orderers"
"""Distinct count read as the union of the ``carters`` and ``orderers`` HyperLogLogs (not
stored): with both, the funnel's cart-to-order step counts only cart visitors who ordered."""
VIEW_DEPTH_FIELD = "visitors_by_views"
"""Counter name of the visitors of an hour or a day by their page views in it:
``visitors_by_views|views=1`` (exactly one: the live 跳失率's numerator) and ``=2``
(two or more)."""
VIEW_DEPTH_MAX = 2
RANKING_TRIMMED = "ranking_trimmed"
"""Counter of the scores a ranking lost to its cap (``ranking_trimmed|ranking=<name>``,
written by the apply script in the ranking's bucket): no member's score is low by more."""


# Counter and distinct-set field names: ``name`` or ``name|dimension=value``.

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


DERIVED_SETS = frozenset(
    {
        "uv",
        "product_viewers",
        "campaign_viewers",
        "carters",
        "active_members",
        "orderers",
        "payers",
        "paying_members",
        "warehouses",
    }
)
"""Distinct sets to which an event adds its member in every bucket it falls in: a week's
or a month's set is then the union of its days' and is not stored
(:data:`streams.common.timebuckets.DERIVED_DISTINCT`). Not ``unique_pv`` (business days only) nor
``new_member_payers`` (new within each period)."""


# State tables and live sets of a shard (``P:{S}:s:<table>``, ``P:{S}:z:<name>``).

VISIT_TABLE = "visit"
"""A visitor's page views still open to late events, in event-time order (replaces the
``session`` table of earlier versions, which held one running session per visitor)."""
CONVERSATION_TABLE = "chat"
"""A conversation's messages still open to late events (replaces ``conversation``)."""
COMPLAINT_TABLE = "complaint"
ORDER_TABLE = "order"
"""The order ids of the last ``KPI_ORDER_DEDUPE_DAYS``: which of their events counted
(a bit per kind) and the newest one's time, as ``newest_ms * 16 + kinds``."""
STATE_TABLES = (VISIT_TABLE, CONVERSATION_TABLE, COMPLAINT_TABLE, ORDER_TABLE)
WAITING_ZSET = "waits"
"""Live set of the customers waiting: ``<waiting since, ms>\x1f<conversation>`` scored by
the time the conversation ends unless a message comes (last message + timeout, ms)."""
HOLDING_ZSET = "holds"
"""Live set of the agents holding a conversation: ``<agent>\x1f<conversation>``, scored
like :data:`WAITING_ZSET`. A reader counts only the members scored after now, so a
conversation without a message within the timeout before now (replayed history, a
partition whose events stopped) is not live."""
LIVE_SEPARATOR = "\x1f"


# The response-time histogram: ``cs_response_bin|le=<bound>`` counters.

RESPONSE_BINS_S = (
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    1200,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    172800,
)
"""Upper bounds of the response-time histogram bins (seconds); one more bin is +Inf.

From seconds (chat, the 30-second SLA) to two days (e-mail, social media): a quantile
read from them (PromQL ``histogram_quantile``, the report) lies in the bin holding the
true one, so it is off by less than that bin's width. 18 bins per window and histogram.
"""
