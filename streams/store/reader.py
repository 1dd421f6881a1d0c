"""The store's reader: what Redis (or its in-memory twin) holds, as plain figures of windows.

:meth:`StoreReader.read` takes the moment and the windows to read as arguments and
returns a :class:`StoreFigures`: summed counters and merged distinct counts per window
(:class:`~streams.kpi.formulas.WindowFigures`), exact ranking scores, the views and exits
of every page above the exit-rate floor, the live sets alive at the moment and the
operations counters. It decides nothing about metric names; the collector
(:mod:`streams.metrics.families`) turns the figures into metric families.

Reads go through the narrow :class:`ReadClient` interface (a subset of redis-py's
commands, pipelined): a ``redis.Redis`` satisfies it and so does the in-memory twin
(:class:`streams.store.memory_reads.MemoryReads`), which answers the same commands from a
:class:`~streams.store.memory_sink.MemorySink` by parsing the keys.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from redis.client import NEVER_DECODE

from streams.common.keys import (
    ANY,
    CART_OR_ORDER,
    DERIVED_SETS,
    HOLDING_ZSET,
    OPS_CONSUMED,
    OPS_LAST_APPLY_MS,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    OPS_RETRACTIONS,
    OPS_TOO_LATE,
    REPEAT_LIFETIME_TALLY,
    VIEW_DEPTH_FIELD,
    WAITING_ZSET,
    KeyLayout,
    Shard,
    closed_writes,
    parse_field,
)
from streams.common.keys import (
    field as kpi_field,
)
from streams.common.timebuckets import Bucket, Granularity
from streams.ingest.events import RejectReason, TopicKind
from streams.kpi.catalogue import (
    DISTINCT,
    EXIT_RANKING,
    ORDER_RANKINGS,
    ORDER_SETS,
    PAGE_VIEWS_RANKING,
    RANKINGS,
)
from streams.kpi.formulas import WindowFigures
from streams.store.hll import HllFormatError, Registers, count, registers, union

log = logging.getLogger(__name__)

_REASONS = frozenset(reason.value for reason in RejectReason)


class Pipeline(Protocol):
    """The commands the reader pipelines (redis-py's names and arguments)."""

    def get(self, name: str) -> object: ...
    def hgetall(self, name: str) -> object: ...
    def pfcount(self, *sources: str) -> object: ...
    def zrevrange(self, name: str, start: int, end: int, withscores: bool = ...) -> object: ...
    def zrangebyscore(
        self, name: str, min: float | str, max: float | str, *, withscores: bool = ...
    ) -> object: ...
    def zmscore(self, key: str, members: list[str]) -> object: ...
    def pfmerge(self, dest: str, *sources: str) -> object: ...
    def expire(self, name: str, time: int) -> object: ...
    def exists(self, *names: str) -> object: ...
    def delete(self, *names: str) -> object: ...
    def execute(self, raise_on_error: bool = ...) -> list[object]: ...


class ReadClient(Protocol):
    """A store the reader can read: ``redis.Redis`` or :class:`MemoryReads`."""

    def pipeline(self, transaction: bool = ...) -> Pipeline: ...  # noqa: D102
    def smembers(self, name: str) -> object: ...  # noqa: D102


@dataclass(frozen=True)
class Window:
    """A named window: the buckets whose counters it sums and whose sets it merges."""

    name: str
    buckets: tuple[Bucket, ...]
    distinct_buckets: tuple[Bucket, ...] = ()
    """The buckets whose distinct sets make up the window's for the sets kept in every
    bucket (:data:`~streams.common.keys.DERIVED_SETS`; a week's are its days'); the
    window's own buckets when empty."""
    partial: bool = False
    """The buckets are finer parts of a period (a day so far as hours and minutes): the
    sets kept only per period (``unique_pv``, ``new_member_payers``) are not read, since
    their period's set would count events after the window's end."""
    cacheable: bool = False
    """A closed period, ended long enough ago that no batch still in flight can write into
    it without counting a write into an ended bucket (see :class:`ClosedCache`)."""
    uv_only: bool = False
    """Only UV among the distinct sets (rolling windows of many minutes: the other sets
    are not charted there, and each would cost one more multi-key count per scrape)."""
    sealed: frozenset[Bucket] = frozenset()
    """The buckets and distinct parts that had ended long enough before the moment that
    no batch still in flight writes into them uncounted (as :attr:`cacheable`): with a
    cache, their counters are kept between reads and their distinct sets merged once."""


@dataclass(frozen=True)
class Labels:
    """The allow-lists that bound label values (and so the fields read per dimension)."""

    channels: tuple[str, ...]
    page_types: tuple[str, ...]
    devices: tuple[str, ...]
    campaigns: tuple[str, ...]

    def values(self, dimension: str) -> tuple[str, ...]:
        """Allowed values of a dimension."""
        return {
            "channel": self.channels,
            "page_type": self.page_types,
            "device": self.devices,
            "campaign": self.campaigns,
        }[dimension]


@dataclass(frozen=True)
class ExitPages:
    """Exact views and exits of every page with at least the floor's views in a window."""

    views: Counter[str]
    exits: Counter[str]


@dataclass
class Live:
    """The live sets' members alive at the moment (ending after it), and lifetime tallies."""

    waits: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)
    repeat_lifetime: Counter[str] = field(default_factory=Counter)


@dataclass
class Ops:
    """Operations counters of the pipeline, per topic and partition."""

    consumed: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    too_late: Counter[str] = field(default_factory=Counter)
    retractions: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    watermarks: dict[Shard, float] = field(default_factory=dict)
    """Newest event time seen per shard (epoch seconds)."""
    offsets: dict[Shard, int] = field(default_factory=dict)
    last_apply: dict[Shard, float] = field(default_factory=dict)

    def add_counters(self, shard: Shard, reply: object) -> None:
        """Fold one shard's ``ops`` hash."""
        for name, value in _int_hash(reply).items():
            if name == OPS_CONSUMED:
                self.consumed[shard.topic] += value
            elif name == OPS_LATE:
                self.late[shard.topic] += value
            elif name == OPS_TOO_LATE:
                self.too_late[shard.topic] += value
            elif name == OPS_RETRACTIONS:
                self.retractions[shard.topic] += value
            elif name == OPS_LAST_APPLY_MS:
                self.last_apply[shard] = value / 1000
            elif name.startswith(OPS_REJECTED_PREFIX):
                reason = name.removeprefix(OPS_REJECTED_PREFIX)
                if reason in _REASONS:
                    self.rejected[(shard.topic, reason)] += value


@dataclass(frozen=True)
class StoreFigures:
    """Everything one read gives, keyed by window name."""

    moment_s: float
    windows: dict[str, WindowFigures]
    rankings: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """Exact scores (summed over shards) of each ranking's candidates, per (window, name)."""
    exit_pages: dict[str, ExitPages] = field(default_factory=dict)
    live: Live | None = None
    ops: Ops | None = None
    cached: frozenset[str] = frozenset()
    """The windows served from the :class:`ClosedCache` (read earlier, unchanged since)."""


@dataclass(frozen=True)
class _Cached:
    """A closed window's figures and the versions they were read under."""

    buckets: tuple[Bucket, ...]
    version: tuple[tuple[str, int], ...]
    figures: WindowFigures
    rankings: dict[str, Counter[str]]
    exits: ExitPages | None


@dataclass
class ClosedCache:
    """Figures of closed windows (yesterday, last week, ...) kept between reads.

    An entry serves while the window has the same buckets and no shard has counted a
    batch written into an ended bucket of the window's size: a late event that changes a
    closed period is seen at the next read. ``served`` counts the reads served, per window.
    """

    entries: dict[str, _Cached] = field(default_factory=dict)
    served: Counter[str] = field(default_factory=Counter)
    counters: dict[Bucket, tuple[tuple[tuple[str, int], ...], Counter[str]]] = field(
        default_factory=dict
    )
    """Summed counters of sealed buckets, under the versions of their size they were read
    under (every shard's count)."""
    generation: int = 0
    """Moves whenever a closed window is kept (read again): what was built from the
    cached windows before is stale."""
    registers: dict[str, Registers] = field(default_factory=dict)
    """Decoded unions of sealed parts by merged key (its name changes with its content)."""
    merged: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """The merged key of the sealed parts per (shard id, window, distinct set) made so far."""

    def hits(
        self, windows: Sequence[Window], versions: Mapping[Granularity, tuple[tuple[str, int], ...]]
    ) -> dict[str, _Cached]:
        """The cached entries still valid for ``windows``."""
        out = {}
        for window in windows:
            found = self.entries.get(window.name)
            if (
                window.cacheable
                and found is not None
                and found.buckets == window.buckets
                and found.version == versions[window.buckets[0].granularity]
            ):
                out[window.name] = found
        self.served.update(out.keys())
        return out

    def keep(
        self,
        windows: Sequence[Window],
        versions: Mapping[Granularity, tuple[tuple[str, int], ...]],
        figures: Mapping[str, WindowFigures],
        rankings: Mapping[tuple[str, str], Counter[str]],
        exits: Mapping[str, ExitPages],
    ) -> None:
        """Keep the cacheable windows just read, under the versions read before them."""
        for window in (w for w in windows if w.cacheable):
            self.generation += 1
            self.entries[window.name] = _Cached(
                window.buckets,
                versions[window.buckets[0].granularity],
                figures[window.name],
                {r: scores for (w, r), scores in rankings.items() if w == window.name},
                exits.get(window.name),
            )


class StoreReader:
    """Reads figures of windows at a moment; holds no state between reads."""

    def __init__(
        self,
        client: ReadClient,
        layout: KeyLayout,
        labels: Labels,
        topic_kinds: Mapping[str, TopicKind],
        top_n: int = 20,
        exit_min_views: int = 20,
        union_here: bool = False,
    ) -> None:
        self.client = client
        self.layout = layout
        self.labels = labels
        self.topic_kinds = dict(topic_kinds)
        self.top_n = top_n
        self.exit_min_views = exit_min_views
        self.union_here = union_here
        """Count distinct sets over shards here (``GET`` each HyperLogLog, union, count:
        :mod:`streams.store.hll`) rather than with a multi-key ``PFCOUNT``, which a Redis
        Cluster refuses across slots; the unions of sealed parts are decoded once."""

    def shards(self) -> list[Shard]:
        """Every shard with data whose input topic is configured."""
        raw = self.client.smembers(self.layout.shards())
        shards = []
        for item in raw if isinstance(raw, set | list | tuple) else ():
            shard = Shard.parse(item.decode() if isinstance(item, bytes) else str(item))
            if _base(shard.topic) in self.topic_kinds:
                shards.append(shard)
        return sorted(shards)

    def distinct_names(self, window: Window) -> list[str]:
        """The distinct-set fields read for ``window``."""
        names = []
        for comp in DISTINCT:
            if window.uv_only and comp.name != "uv":
                continue
            if window.partial and comp.name not in DERIVED_SETS:
                continue
            names.append(kpi_field(comp.name, ANY, ANY))
            for dim in comp.dims:
                names += [kpi_field(comp.name, dim, v) for v in self.labels.values(dim)]
        return names

    def read(
        self,
        moment_s: float,
        windows: Sequence[Window],
        *,
        ranked: Collection[str] = (),
        live: bool = False,
        ops: bool = False,
        cache: ClosedCache | None = None,
        merge: bool = True,
    ) -> StoreFigures:
        """Figures of ``windows`` as stored now, read as of ``moment_s``.

        ``ranked`` names the windows (single buckets) whose rankings and exit pages are
        read; ``live`` reads the live sets alive at ``moment_s``; ``ops`` the offsets,
        watermarks and operations counters. With a ``cache``, the windows marked
        :attr:`Window.cacheable` are taken from it while no shard has written into an
        ended bucket of their size since they were read (``closed_writes:<g>``), and
        kept in it when read; so are the counters of every :attr:`Window.sealed` bucket,
        and the distinct sets over two or more sealed parts are counted from one union per
        shard of those parts, merged once (``PFMERGE`` into :meth:`KeyLayout.merged`, which
        expires) and made again when the shard's count of writes into ended buckets of
        that size moves. ``merge=False`` reads every part instead. Raises
        ``redis.RedisError`` when the store cannot be read.
        """
        shards = self.shards()
        # First the shards' offsets and operations counters, in a round trip of their
        # own: every figure read after them includes at least these offsets, and a write
        # after them moves a count of writes into ended buckets, so a figure cached under
        # these versions can only be newer than them.
        found_ops = Ops() if ops else None
        hashes: dict[Shard, dict[str, int]] = {}
        first = _Batch(self.client)
        for shard in shards if found_ops is not None or cache is not None else ():
            if found_ops is not None:
                first.read(
                    "get", self.layout.watermark(shard), into=partial(_watermark, found_ops, shard)
                )
                first.read(
                    "get", self.layout.applied(shard), into=partial(_offset, found_ops, shard)
                )
            first.read("hgetall", self.layout.ops(shard), into=partial(_keep_hash, hashes, shard))
        first.execute()
        if found_ops is not None:
            for shard, found in hashes.items():
                found_ops.add_counters(shard, found)
        versions: dict[Granularity, tuple[tuple[str, int], ...]] = {}
        hits: dict[str, _Cached] = {}
        if cache is not None:
            versions = {
                size: tuple((s.id, hashes.get(s, {}).get(closed_writes(size), 0)) for s in shards)
                for size in Granularity
            }
            hits = cache.hits(windows, versions)
        all_windows, windows = windows, [w for w in windows if w.name not in hits]
        kinds = self.topic_kinds
        visitors = [
            s for s in shards if kinds[_base(s.topic)] in (TopicKind.CLICKSTREAM, TopicKind.ORDERS)
        ]
        chats = [s for s in shards if kinds[_base(s.topic)] is TopicKind.CHAT]
        batch = _Batch(self.client)
        counters: dict[Bucket, Counter[str]] = defaultdict(Counter)
        sealed = {b for w in windows for b in w.sealed} if cache is not None else set()
        to_keep = []
        for bucket in sorted({b for w in windows for b in w.buckets}):
            if cache is not None and bucket in sealed:
                known = cache.counters.get(bucket)
                if known is not None and known[0] == versions[bucket.granularity]:
                    counters[bucket] = known[1]
                    continue
                to_keep.append(bucket)
            for shard in shards:
                batch.read(
                    "hgetall",
                    self.layout.counters(shard, bucket),
                    into=partial(_add_hash, counters[bucket]),
                )
        distinct: dict[str, dict[str, int]] = defaultdict(dict)
        merges = _Merges(self.layout, cache if merge else None, versions)
        writers = {
            kind: [s for s in shards if kinds[_base(s.topic)] is kind]
            for kind in (TopicKind.CLICKSTREAM, TopicKind.ORDERS)
        }
        counts: list[tuple[list[str], Callable[[object], None]]] = []
        for window in windows:
            for name in self.distinct_names(window):
                set_name = parse_field(name)[0]
                derived = set_name in DERIVED_SETS
                parts = (
                    window.distinct_buckets
                    if derived and window.distinct_buckets
                    else window.buckets
                )
                kind = TopicKind.ORDERS if set_name in ORDER_SETS else TopicKind.CLICKSTREAM
                keys = merges.keys(writers[kind], window, parts, name)
                if keys:
                    counts.append((keys, partial(_set_int, distinct[window.name], name)))
        for window in windows:
            if window.uv_only:
                continue
            # Visitors who added to a cart or ordered: carters | orderers, across the two
            # topics' shards (the funnel's step from cart to order, formulas.cart_orderers).
            parts = window.distinct_buckets or window.buckets
            clicks_, orders_ = writers[TopicKind.CLICKSTREAM], writers[TopicKind.ORDERS]
            union_keys = merges.keys(clicks_, window, parts, kpi_field("carters", ANY, ANY))
            union_keys += merges.keys(orders_, window, parts, kpi_field("orderers", ANY, ANY))
            if union_keys:
                either = kpi_field(CART_OR_ORDER, ANY, ANY)
                counts.append((union_keys, partial(_set_int, distinct[window.name], either)))
        merges.queue(batch)
        unions: list[_Union] = []
        # Each key is read once however many windows count it (today's day is a part of
        # the day, the week and the month), decoded once and shared.
        wanted: dict[str, list[_Union]] = defaultdict(list)
        for keys, into in counts:
            if not self.union_here:
                batch.read("pfcount", *keys, into=into)
                continue
            union = _Union(into)
            unions.append(union)
            for key in keys:
                decoded = cache.registers.get(key) if cache is not None else None
                if decoded is not None:
                    union.parts.append(decoded)
                else:
                    wanted[key].append(union)
        for key, waiting in wanted.items():
            keep = cache.registers if cache is not None and key in merges.made else None
            batch.read(
                "get", key, into=partial(_decode_into, key, waiting, keep), **{NEVER_DECODE: True}
            )
        ranked_windows = [w for w in windows if w.name in ranked]
        tops: dict[tuple[str, str], dict[Shard, list[tuple[str, int]]]] = defaultdict(dict)
        exit_candidates: dict[str, set[str]] = defaultdict(set)
        clicks = writers[TopicKind.CLICKSTREAM]
        floor = math.ceil(self.exit_min_views / max(1, len(clicks)))
        for window in ranked_windows:
            bucket = window.buckets[0]
            for comp in RANKINGS:
                for shard in writers[_ranking_writer(comp.name)]:
                    batch.read(
                        "zrevrange",
                        self.layout.ranking(shard, bucket, comp.name),
                        0,
                        _TOP_ASKED * self.top_n - 1,
                        True,
                        into=partial(_keep_list, tops[(window.name, comp.name)], shard),
                    )
            for shard in clicks:
                # A page with the floor's views over n shards has floor / n on one of them.
                batch.read(
                    "zrangebyscore",
                    self.layout.ranking(shard, bucket, PAGE_VIEWS_RANKING),
                    floor,
                    "+inf",
                    into=partial(_add_members, exit_candidates[window.name]),
                )
        found_live = Live() if live else None
        if found_live is not None:
            alive = f"({int(moment_s * 1000)}"  # members ending after the moment
            for shard in chats:
                for name, target in (
                    (WAITING_ZSET, found_live.waits),
                    (HOLDING_ZSET, found_live.holds),
                ):
                    batch.read(
                        "zrangebyscore",
                        self.layout.live_set(shard, name),
                        alive,
                        "+inf",
                        into=partial(_extend_members, target),
                    )
            for shard in visitors:
                batch.read(
                    "hgetall",
                    self.layout.tally(shard, REPEAT_LIFETIME_TALLY),
                    into=partial(_add_hash, found_live.repeat_lifetime),
                )
        batch.execute()
        for union in unions:
            union.finish()
        if cache is not None and self.union_here:
            cache.registers = {k: v for k, v in cache.registers.items() if k in merges.made}
        if merges.lost:
            log.warning("merged distinct sets vanished from Redis; reading every part")
            return self.read(
                moment_s, all_windows, ranked=ranked, live=live, ops=ops, cache=cache, merge=False
            )
        if cache is not None:
            for bucket in to_keep:
                cache.counters[bucket] = (versions[bucket.granularity], counters[bucket])
            cache.counters = {b: v for b, v in cache.counters.items() if b in sealed}
        rankings = self._top(writers, ranked_windows, tops)
        exit_pages = self._exit_pages(clicks, ranked_windows, exit_candidates)
        figures = {
            w.name: WindowFigures(_window_counters(w, counters), distinct.get(w.name, {}))
            for w in windows
        }
        if cache is not None:
            cache.keep(windows, versions, figures, rankings, exit_pages)
            for name, cached in hits.items():
                figures[name] = cached.figures
                rankings.update({(name, r): scores for r, scores in cached.rankings.items()})
                if cached.exits is not None:
                    exit_pages[name] = cached.exits
            figures = {w.name: figures[w.name] for w in all_windows}
        return StoreFigures(
            moment_s, figures, rankings, exit_pages, found_live, found_ops, frozenset(hits)
        )

    def _top(
        self,
        writers: Mapping[TopicKind, Sequence[Shard]],
        ranked: Sequence[Window],
        tops: Mapping[tuple[str, str], Mapping[Shard, list[tuple[str, int]]]],
    ) -> dict[tuple[str, str], Counter[str]]:
        """Exact totals (over ``shards``) of every member that can be in a ranking's top n.

        A shard's top list alone would miss a member's score on shards where it ranks
        lower, and a member could be in the top n overall without topping any shard.
        :class:`_TopN` bounds both (TPUT) and asks each shard only for what it misses.
        """
        buckets = {w.name: w.buckets[0] for w in ranked}
        plans = {
            (window, name): _TopN(
                writers[_ranking_writer(name)], lists, _TOP_ASKED * self.top_n, self.top_n
            )
            for (window, name), lists in tops.items()
        }
        deep = _Batch(self.client)
        for (window, name), plan in plans.items():
            threshold = plan.deep_threshold()
            if threshold is not None:
                for shard in writers[_ranking_writer(name)]:
                    deep.read(
                        "zrangebyscore",
                        self.layout.ranking(shard, buckets[window], name),
                        threshold,
                        "+inf",
                        withscores=True,
                        into=partial(plan.add_deep, shard, threshold),
                    )
        deep.execute()
        lookups = _Batch(self.client)
        for (window, name), plan in plans.items():
            for shard, members in plan.missing().items():
                lookups.read(
                    "zmscore",
                    self.layout.ranking(shard, buckets[window], name),
                    members,
                    into=partial(plan.add_scores, shard, members),
                )
        lookups.execute()
        return {key: plan.totals() for key, plan in plans.items()}

    def _exit_pages(
        self, shards: Sequence[Shard], ranked: Sequence[Window], candidates: Mapping[str, set[str]]
    ) -> dict[str, ExitPages]:
        """Exact views and exits (ZMSCORE on every shard) of every exit-rate candidate."""
        batch = _Batch(self.client)
        found = {w.name: ExitPages(Counter(), Counter()) for w in ranked}
        for window in ranked:
            items = sorted(candidates.get(window.name, ()))
            if not items:
                continue
            bucket = window.buckets[0]
            pages = found[window.name]
            for target, name in ((pages.views, PAGE_VIEWS_RANKING), (pages.exits, EXIT_RANKING)):
                for shard in shards:
                    batch.read(
                        "zmscore",
                        self.layout.ranking(shard, bucket, name),
                        items,
                        into=partial(_add_scores, target, items),
                    )
        batch.execute()
        return found


_TOP_ASKED = 3
"""Each shard's top list is this many times the exported top n long (the first phase)."""


class _TopN:
    """The exact top n of a ranking summed over shards, from each shard's top list.

    TPUT (Cao and Wang, "Efficient top-K query calculation in distributed networks",
    PODC 2004): ``tau``, the n-th highest sum of the scores seen, is at most the n-th
    highest total. A member missing from a shard's full list scores at most that list's
    last score there (0 when the list holds the whole shard), so a member whose seen
    scores plus those caps stay below ``tau`` cannot be in the top n. When the caps
    alone reach ``tau`` a member seen nowhere could, and every shard is asked for its
    members scoring at least ``tau / shards`` (a total of ``tau`` has that much on one
    shard). The members left get their missing scores looked up (``ZMSCORE``).
    """

    def __init__(
        self,
        shards: Sequence[Shard],
        lists: Mapping[Shard, list[tuple[str, int]]],
        asked: int,
        n: int,
    ) -> None:
        self.index = {shard: i for i, shard in enumerate(shards)}
        self.known: dict[str, dict[int, int]] = defaultdict(dict)
        self.cap: list[float] = []
        for i, shard in enumerate(shards):
            items = lists.get(shard, [])
            for member, score in items:
                self.known[member][i] = score
            self.cap.append(items[-1][1] if len(items) >= asked else 0)
        partial_sums = sorted((sum(v.values()) for v in self.known.values()), reverse=True)
        self.tau = partial_sums[n - 1] if len(partial_sums) >= n else 0
        self.candidates: list[str] = []

    def deep_threshold(self) -> float | None:
        """The score to ask every shard down to, when a member seen nowhere could qualify."""
        if self.tau > 0 and sum(self.cap) >= self.tau:
            return self.tau / len(self.cap)
        return None

    def add_deep(self, shard: Shard, threshold: float, reply: object) -> None:
        """Fold a shard's members scoring at least ``threshold``: the rest score below it."""
        i = self.index[shard]
        for member, score in _pairs(reply):
            self.known[member][i] = score
        self.cap[i] = min(self.cap[i], threshold)

    def missing(self) -> dict[Shard, list[str]]:
        """Per shard, the members that can still be in the top n and whose score is unknown.

        Decides the candidates (:meth:`totals` gives theirs once the scores are in).
        """
        cap, tau = self.cap, self.tau
        all_caps = sum(cap)
        self.candidates = [
            member
            for member, scores in self.known.items()
            if all_caps + sum(score - cap[i] for i, score in scores.items()) >= tau
        ]
        out: dict[Shard, list[str]] = defaultdict(list)
        open_shards = [(i, s) for s, i in self.index.items() if cap[i] > 0]
        for member in sorted(self.candidates):
            scores = self.known[member]
            if len(scores) < len(cap):
                for i, shard in open_shards:
                    if i not in scores:
                        out[shard].append(member)
        return out

    def add_scores(self, shard: Shard, members: list[str], reply: object) -> None:
        """Fold a ZMSCORE reply (None: the member has no score there)."""
        i = self.index[shard]
        if isinstance(reply, list):
            for member, score in zip(members, reply, strict=True):
                self.known[member][i] = 0 if score is None else int(float(score))

    def totals(self) -> Counter[str]:
        """Exact totals of the candidates (every score known, or 0 on a shard listed whole)."""
        return Counter({member: sum(self.known[member].values()) for member in self.candidates})


MERGED_TTL_S = 2 * 86_400
"""How long a merged key outlives its last use (the reader deletes the one it replaces;
this bounds the ones a stopped reader leaves)."""


class _Merges:
    """The unions of sealed parts a read counts from, and the merges it still has to make.

    One merged key per shard, window and distinct set (in the shard's slot, so Redis
    Cluster takes the ``PFMERGE``). ``EXISTS`` on them, queued after the merges and
    before the counts, tells a read when one vanished (eviction, a restart without
    persistence, another reader's clean-up): :attr:`lost`.
    """

    def __init__(
        self,
        layout: KeyLayout,
        cache: ClosedCache | None,
        versions: Mapping[Granularity, tuple[tuple[str, int], ...]],
    ) -> None:
        self.layout = layout
        self.cache = cache
        self.versions = {g: dict(v) for g, v in versions.items()}
        self.todo: list[tuple[str, list[str], str | None]] = []
        self.used: dict[Shard, list[str]] = defaultdict(list)
        self.made: set[str] = set()
        """Every merged key this read counts from."""
        self.lost = False
        self._plans: dict[
            tuple[str, int, int], tuple[list[str], list[tuple[Shard, str, list[str]]]]
        ]
        self._plans = {}

    def keys(
        self, shards: Sequence[Shard], window: Window, parts: tuple[Bucket, ...], name: str
    ) -> list[str]:
        """The keys whose union is ``name`` over ``parts`` on every shard."""
        plan = self._plans.get((window.name, id(parts), id(shards)))
        if plan is None:
            plan = self._plans[(window.name, id(parts), id(shards))] = self._plan(
                shards, window, parts
            )
        prefixes, merged = plan
        keys = [prefix + name for prefix in prefixes]
        for shard, prefix, sources in merged:
            key = prefix + name
            slot = (shard.id, window.name, name)
            previous = self.cache.merged.get(slot) if self.cache is not None else None
            if previous != key and self.cache is not None:
                self.todo.append((key, [source + name for source in sources], previous))
                self.cache.merged[slot] = key
            self.used[shard].append(key)
            self.made.add(key)
            keys.append(key)
        return keys

    def _plan(
        self, shards: Sequence[Shard], window: Window, parts: tuple[Bucket, ...]
    ) -> tuple[list[str], list[tuple[Shard, str, list[str]]]]:
        """Key prefixes of ``window`` over ``parts`` (a distinct set's name completes each).

        The parts read one by one, and per shard the merged key and its sources.
        """
        # A cacheable window is read once until a late write: nothing to merge for.
        merging = self.cache is not None and not window.cacheable
        sealed = sorted(b for b in parts if b in window.sealed) if merging else []
        if len(sealed) < 2:
            return [self.layout.distinct_prefix(s, b) for s in shards for b in parts], []
        rest = [b for b in parts if b not in window.sealed]
        size = sealed[0].granularity
        prefixes, merged = [], []
        for shard in shards:
            prefixes += [self.layout.distinct_prefix(shard, b) for b in rest]
            version = self.versions.get(size, {}).get(shard.id, 0)
            sources = [self.layout.distinct_prefix(shard, b) for b in sealed]
            merged.append((shard, self.layout.merged_prefix(shard, sealed, version), sources))
        return prefixes, merged

    def queue(self, batch: _Batch) -> None:
        """Queue the merges still to make, then the check that every used key exists."""
        for key, sources, previous in self.todo:
            batch.read("pfmerge", key, *sources, into=_ignore)
            batch.read("expire", key, MERGED_TTL_S, into=_ignore)
            if previous is not None:
                batch.read("delete", previous, into=_ignore)
        for keys in self.used.values():
            batch.read("exists", *keys, into=partial(self._check, len(keys)))

    def _check(self, expected: int, reply: object) -> None:
        if not isinstance(reply, int) or reply != expected:
            self.lost = True
            if self.cache is not None:
                self.cache.merged.clear()


def _window_counters(window: Window, counters: Mapping[Bucket, Counter[str]]) -> Counter[str]:
    """The counters of ``window``: its buckets' summed.

    Visitors by page views (the live 跳失率) are counted per hour or day and cannot be
    summed: a visitor with one view in each of two hours is no one-view visitor of both.
    They are kept only for a window of one hour or day bucket (not for a day so far made
    of hours and minutes, as a backfill reads it).
    """
    if len(window.buckets) == 1:
        return Counter(counters[window.buckets[0]])
    total: Counter[str] = sum((counters[b] for b in window.buckets), Counter())
    prefix = kpi_field(VIEW_DEPTH_FIELD, "views", "")
    for name in [k for k in total if k.startswith(prefix)]:
        del total[name]
    return total


class _Union:
    """One distinct count taken here: the HyperLogLogs read, unioned and counted."""

    def __init__(self, into: Callable[[object], None]) -> None:
        self.into = into
        self.parts: list[Registers] = []

    def finish(self) -> None:
        if not self.parts:  # every key missing: nothing to decode, union or count
            self.into(0)
        elif len(self.parts) == 1:
            self.into(count(self.parts[0]))
        else:
            self.into(count(union(self.parts)))


def _decode_into(
    key: str, unions: list[_Union], keep: dict[str, Registers] | None, reply: object
) -> None:
    """Decode one HyperLogLog's bytes for every union counting it (and keep a sealed one)."""
    raw = reply if isinstance(reply, bytes) or reply is None else None
    if raw is None and reply is not None:
        raise HllFormatError(f"{key}: not a HyperLogLog string")
    if raw is None:
        return  # a missing key adds nothing to a union
    regs = registers(raw)
    for waiting in unions:
        waiting.parts.append(regs)
    if keep is not None:
        keep[key] = regs


_RAW = frozenset({"pfmerge", "get"})


class _Batch:
    """One pipeline and the handler of each reply, in order."""

    def __init__(self, client: ReadClient) -> None:
        self.pipe = client.pipeline(transaction=False)
        self.handlers: list[Callable[[object], None]] = []

    def read(
        self, command: str, *args: object, into: Callable[[object], None], **options: object
    ) -> None:
        if command in _RAW and hasattr(self.pipe, "execute_command"):
            # redis-py's cluster pipeline refuses PFMERGE by name, though all its keys
            # share one slot here; sent as it is, it goes to that slot's node. A GET of
            # a HyperLogLog asks for its bytes undecoded (NEVER_DECODE).
            self.pipe.execute_command(command.upper(), *args, **options)
        else:
            getattr(self.pipe, command)(*args, **options)
        self.handlers.append(into)

    def execute(self) -> None:
        if not self.handlers:
            return
        for handle, reply in zip(self.handlers, self.pipe.execute(), strict=True):
            handle(reply)


def _ranking_writer(name: str) -> TopicKind:
    """The kind of topic whose shards write ranking ``name``."""
    return TopicKind.ORDERS if name in ORDER_RANKINGS else TopicKind.CLICKSTREAM


def _ignore(_: object) -> None:
    return None


def _base(topic: str) -> str:
    """Input topic of a shard topic (replay shards are ``<topic>@<source>``)."""
    return topic.split("@", 1)[0]


def _text(item: object) -> str:
    if type(item) is str:  # a client with decode_responses (the exporter's)
        return item
    return item.decode() if isinstance(item, bytes) else str(item)


def _watermark(ops: Ops, shard: Shard, reply: object) -> None:
    if reply is not None:
        ops.watermarks[shard] = int(_text(reply)) / 1000


def _offset(ops: Ops, shard: Shard, reply: object) -> None:
    if reply is not None:
        ops.offsets[shard] = int(_text(reply))


def _keep_hash(target: dict[Shard, dict[str, int]], shard: Shard, reply: object) -> None:
    target[shard] = _int_hash(reply)


def _add_hash(target: Counter[str], reply: object) -> None:
    target.update(_int_hash(reply))


def _set_int(target: dict[str, int], name: str, reply: object) -> None:
    target[name] = int(_text(reply))


def _int_hash(reply: object) -> dict[str, int]:
    if not isinstance(reply, dict):
        return {}
    out = {}
    for k, v in reply.items():
        try:
            out[k if type(k) is str else _text(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def _add_members(target: set[str], reply: object) -> None:
    """Members of a ZREVRANGE (with or without scores) or ZRANGEBYSCORE reply."""
    if isinstance(reply, list):
        target.update(_text(m[0] if isinstance(m, tuple | list) else m) for m in reply)


def _keep_list(target: dict[Shard, list[tuple[str, int]]], shard: Shard, reply: object) -> None:
    target[shard] = _pairs(reply)


def _pairs(reply: object) -> list[tuple[str, int]]:
    """(member, score) pairs of a reply with scores, highest first as Redis gave them."""
    if not isinstance(reply, list):
        return []
    return [(m if type(m) is str else _text(m), int(sc)) for m, sc in reply]


def _add_scores(target: Counter[str], items: list[str], reply: object) -> None:
    if isinstance(reply, list):
        for item, score in zip(items, reply, strict=True):
            if score is not None:
                target[item] += int(float(score))


def _extend_members(target: list[str], reply: object) -> None:
    if isinstance(reply, list):
        target.extend(_text(m) for m in reply)


__all__ = [
    "ClosedCache",
    "ExitPages",
    "Labels",
    "Live",
    "Ops",
    "ReadClient",
    "StoreFigures",
    "StoreReader",
    "Window",
]
