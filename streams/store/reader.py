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

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from streams.common.keys import (
    ANY,
    DERIVED_SETS,
    HOLDING_ZSET,
    OPS_CONSUMED,
    OPS_LAST_APPLY_MS,
    OPS_LATE,
    OPS_REJECTED_PREFIX,
    OPS_RETRACTIONS,
    OPS_TOO_LATE,
    REPEAT_LIFETIME_TALLY,
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
from streams.kpi.catalogue import DISTINCT, EXIT_RANKING, PAGE_VIEWS_RANKING, RANKINGS
from streams.kpi.formulas import WindowFigures

_REASONS = frozenset(reason.value for reason in RejectReason)


class Pipeline(Protocol):
    """The commands the reader pipelines (redis-py's names and arguments)."""

    def get(self, name: str) -> object: ...
    def hgetall(self, name: str) -> object: ...
    def pfcount(self, *sources: str) -> object: ...
    def zrevrange(self, name: str, start: int, end: int, withscores: bool = ...) -> object: ...
    def zrangebyscore(self, name: str, min: float | str, max: float | str) -> object: ...
    def zmscore(self, key: str, members: list[str]) -> object: ...
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
    ) -> None:
        self.client = client
        self.layout = layout
        self.labels = labels
        self.topic_kinds = dict(topic_kinds)
        self.top_n = top_n
        self.exit_min_views = exit_min_views

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
    ) -> StoreFigures:
        """Figures of ``windows`` as stored now, read as of ``moment_s``.

        ``ranked`` names the windows (single buckets) whose rankings and exit pages are
        read; ``live`` reads the live sets alive at ``moment_s``; ``ops`` the offsets,
        watermarks and operations counters. With a ``cache``, the windows marked
        :attr:`Window.cacheable` are taken from it while no shard has written into an
        ended bucket of their size since they were read (``closed_writes:<g>``), and
        kept in it when read. Raises ``redis.RedisError`` when the store cannot be read.
        """
        shards = self.shards()
        versions: dict[Granularity, tuple[tuple[str, int], ...]] = {}
        hits: dict[str, _Cached] = {}
        if cache is not None and any(w.cacheable for w in windows):
            # Before any figure: a write after this read moves a count, so a figure read
            # below can only be newer than the versions it is kept under.
            versions = self._versions(shards, {w.buckets[0].granularity for w in windows})
            hits = cache.hits(windows, versions)
        all_windows, windows = windows, [w for w in windows if w.name not in hits]
        kinds = self.topic_kinds
        visitors = [
            s for s in shards if kinds[_base(s.topic)] in (TopicKind.CLICKSTREAM, TopicKind.ORDERS)
        ]
        chats = [s for s in shards if kinds[_base(s.topic)] is TopicKind.CHAT]
        batch = _Batch(self.client)
        found_ops = Ops() if ops else None
        if found_ops is not None:
            # Offsets first: Redis runs the pipeline in order while the worker keeps
            # applying, so every figure read after them includes at least these offsets.
            for shard in shards:
                batch.read(
                    "get", self.layout.watermark(shard), into=partial(_watermark, found_ops, shard)
                )
                batch.read(
                    "get", self.layout.applied(shard), into=partial(_offset, found_ops, shard)
                )
                batch.read(
                    "hgetall", self.layout.ops(shard), into=partial(found_ops.add_counters, shard)
                )
        counters: dict[Bucket, Counter[str]] = defaultdict(Counter)
        for shard in shards:
            for bucket in sorted({b for w in windows for b in w.buckets}):
                batch.read(
                    "hgetall",
                    self.layout.counters(shard, bucket),
                    into=partial(_add_hash, counters[bucket]),
                )
        distinct: dict[str, dict[str, int]] = defaultdict(dict)
        for window in windows:
            for name in self.distinct_names(window):
                derived = parse_field(name)[0] in DERIVED_SETS
                parts = (
                    window.distinct_buckets
                    if derived and window.distinct_buckets
                    else window.buckets
                )
                keys = [self.layout.distinct(s, b, name) for s in visitors for b in parts]
                if keys:
                    batch.read(
                        "pfcount", *keys, into=partial(_set_int, distinct[window.name], name)
                    )
        ranked_windows = [w for w in windows if w.name in ranked]
        candidates: dict[tuple[str, str], set[str]] = defaultdict(set)
        floor = math.ceil(self.exit_min_views / max(1, len(visitors)))
        for window in ranked_windows:
            bucket = window.buckets[0]
            for comp in RANKINGS:
                for shard in visitors:
                    key = self.layout.ranking(shard, bucket, comp.name)
                    batch.read(
                        "zrevrange",
                        key,
                        0,
                        3 * self.top_n - 1,
                        True,
                        into=partial(_add_members, candidates[(window.name, comp.name)]),
                    )
            for shard in visitors:
                # A page with the floor's views over n shards has floor / n on one of them.
                batch.read(
                    "zrangebyscore",
                    self.layout.ranking(shard, bucket, PAGE_VIEWS_RANKING),
                    floor,
                    "+inf",
                    into=partial(_add_members, candidates[(window.name, EXIT_RANKING)]),
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
        rankings, exit_pages = self._exact(visitors, ranked_windows, candidates)
        figures = {
            w.name: WindowFigures(
                sum((counters[b] for b in w.buckets), Counter()), distinct.get(w.name, {})
            )
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
            moment_s,
            figures,
            rankings,
            exit_pages,
            found_live,
            found_ops,
        )

    def _versions(
        self, shards: Sequence[Shard], sizes: Collection[Granularity]
    ) -> dict[Granularity, tuple[tuple[str, int], ...]]:
        """Per bucket size: every shard's count of batches written into ended buckets."""
        batch = _Batch(self.client)
        found: dict[Shard, dict[str, int]] = {}
        for shard in shards:
            batch.read("hgetall", self.layout.ops(shard), into=partial(_keep_hash, found, shard))
        batch.execute()
        return {
            size: tuple(
                (shard.id, found.get(shard, {}).get(closed_writes(size), 0)) for shard in shards
            )
            for size in sizes
        }

    def _exact(
        self,
        shards: Sequence[Shard],
        ranked: Sequence[Window],
        candidates: Mapping[tuple[str, str], set[str]],
    ) -> tuple[dict[tuple[str, str], Counter[str]], dict[str, ExitPages]]:
        """Exact scores of every candidate, summed over all shards (ZMSCORE on each).

        A shard's top list alone would miss a member's score on shards where it ranks
        lower. The exit candidates are looked up in the page views and the exits.
        """
        batch = _Batch(self.client)
        exact: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        by_name = {w.name: w for w in ranked}
        for (window_name, name), members in candidates.items():
            items = sorted(members)
            if not items:
                continue
            bucket = by_name[window_name].buckets[0]
            lookups = (
                [(_EXIT_VIEWS, PAGE_VIEWS_RANKING), (EXIT_RANKING, EXIT_RANKING)]
                if name == EXIT_RANKING
                else [(name, name)]
            )
            for target, lookup in lookups:
                for shard in shards:
                    batch.read(
                        "zmscore",
                        self.layout.ranking(shard, bucket, lookup),
                        items,
                        into=partial(_add_scores, exact[(window_name, target)], items),
                    )
        batch.execute()
        rankings = {
            key: scores
            for key, scores in exact.items()
            if key[1] not in (_EXIT_VIEWS, EXIT_RANKING)
        }
        exit_pages = {
            w.name: ExitPages(
                exact.get((w.name, _EXIT_VIEWS), Counter()),
                exact.get((w.name, EXIT_RANKING), Counter()),
            )
            for w in ranked
        }
        return rankings, exit_pages


_EXIT_VIEWS = "exit_candidate_views"
"""Internal key of the page views looked up for the exit candidates."""


class _Batch:
    """One pipeline and the handler of each reply, in order."""

    def __init__(self, client: ReadClient) -> None:
        self.pipe = client.pipeline(transaction=False)
        self.handlers: list[Callable[[object], None]] = []

    def read(self, command: str, *args: object, into: Callable[[object], None]) -> None:
        getattr(self.pipe, command)(*args)
        self.handlers.append(into)

    def execute(self) -> None:
        if not self.handlers:
            return
        for handle, reply in zip(self.handlers, self.pipe.execute(), strict=True):
            handle(reply)


def _base(topic: str) -> str:
    """Input topic of a shard topic (replay shards are ``<topic>@<source>``)."""
    return topic.split("@", 1)[0]


def _text(item: object) -> str:
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
            out[_text(k)] = int(v)
        except (TypeError, ValueError):
            continue
    return out


def _add_members(target: set[str], reply: object) -> None:
    """Members of a ZREVRANGE (with or without scores) or ZRANGEBYSCORE reply."""
    if isinstance(reply, list):
        target.update(_text(m[0] if isinstance(m, tuple | list) else m) for m in reply)


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
