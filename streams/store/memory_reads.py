"""The reader's in-memory twin: the reader's Redis commands, answered from a MemorySink.

Keys are taken apart with :meth:`KeyLayout.parse`, so the twin serves exactly the layout
the sink writes. Distinct counts are exact (the twin keeps sets where Redis keeps
HyperLogLogs), so a reader test against the twin checks the reading, not the estimate.
"""

from __future__ import annotations

from collections import Counter

from streams.common.keys import KeyLayout, ParsedKey
from streams.store.memory_sink import MemorySink, ShardStore


class MemoryReads:
    """A ``redis.Redis`` look-alike over a :class:`MemorySink`, for the reader's commands.

    It writes only what the reader writes: the merged distinct sets (:attr:`merged`).
    """

    def __init__(self, sink: MemorySink, layout: KeyLayout) -> None:
        self.sink = sink
        self.layout = layout
        self.merged: dict[str, set[str]] = {}
        """Merged distinct sets by key (:meth:`KeyLayout.merged`)."""

    def smembers(self, name: str) -> set[str]:
        """The shards that applied a batch (the only set the reader reads)."""
        if name != self.layout.shards():
            raise ValueError(f"not the shards set: {name!r}")
        return {shard.id for shard, store in self.sink.shards.items() if store.applied is not None}

    def pipeline(self, transaction: bool = False) -> MemoryPipeline:
        """Commands are queued and answered at :meth:`MemoryPipeline.execute`."""
        return MemoryPipeline(self)

    def _store(self, key: str) -> tuple[ParsedKey, ShardStore]:
        parsed = self.layout.parse(key)
        if parsed.shard is None:
            raise ValueError(f"not a shard key: {key!r}")
        return parsed, self.sink.shards.get(parsed.shard) or ShardStore()

    def get(self, name: str) -> str | None:
        """``applied`` or ``watermark`` of a shard."""
        parsed, store = self._store(name)
        value = {"applied": store.applied, "watermark": store.watermark_ms}[parsed.kind]
        return None if value is None else str(value)

    def hgetall(self, name: str) -> dict[str, str]:
        """A bucket's counters, a shard's ops or a tally."""
        parsed, store = self._store(name)
        if parsed.kind == "counters":
            return {
                field: str(n)
                for (bucket, field), n in store.counters.items()
                if bucket == parsed.bucket
            }
        if parsed.kind == "ops":
            return {field: str(n) for field, n in store.ops.items()}
        if parsed.kind == "tally":
            source = (
                store.lifetime if parsed.name == "repeat_lifetime" else store.tallies[parsed.name]
            )
            return {field: str(n) for field, n in source.items()}
        raise ValueError(f"HGETALL of a {parsed.kind} key")

    def _members(self, sources: tuple[str, ...]) -> set[str]:
        members: set[str] = set()
        for key in sources:
            parsed, store = self._store(key)
            if parsed.kind == "merged":
                members |= self.merged.get(key, set())
            elif parsed.kind == "distinct" and parsed.bucket is not None:
                members |= store.distinct.get((parsed.bucket, parsed.name), set())
            else:
                raise ValueError(f"not a distinct set: {key!r}")
        return members

    def pfcount(self, *sources: str) -> int:
        """Distinct members of the union (exact)."""
        return len(self._members(sources))

    def pfmerge(self, dest: str, *sources: str) -> bool:
        """Keep the union of ``dest`` and ``sources`` as ``dest`` (a merged key only)."""
        if self.layout.parse(dest).kind != "merged":
            raise ValueError(f"the reader merges only into merged keys: {dest!r}")
        self.merged[dest] = self._members((dest, *sources))
        return True

    def expire(self, name: str, time: int) -> bool:
        """Expiry is not modelled; a merged key exists until deleted."""
        return name in self.merged

    def exists(self, *names: str) -> int:
        """How many of ``names`` are merged keys that exist."""
        return sum(1 for name in names if name in self.merged)

    def delete(self, *names: str) -> int:
        """Delete merged keys."""
        return sum(1 for name in names if self.merged.pop(name, None) is not None)

    def _zset(self, key: str) -> dict[str, int]:
        parsed, store = self._store(key)
        if parsed.kind == "ranking" and parsed.bucket is not None:
            return dict(store.ranked.get((parsed.bucket, parsed.name), Counter()))
        if parsed.kind == "live_set":
            return store.zsets.get(parsed.name, {})
        raise ValueError(f"not a sorted set: {key!r}")

    def zrevrange(
        self, name: str, start: int, end: int, withscores: bool = False
    ) -> list[tuple[str, float]] | list[str]:
        """Highest scores first (ties: the greater member first, as Redis)."""
        items = sorted(self._zset(name).items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        chosen = items[start : None if end == -1 else end + 1]
        if withscores:
            return [(member, float(score)) for member, score in chosen]
        return [member for member, _ in chosen]

    def zrangebyscore(
        self, name: str, min: float | str, max: float | str, withscores: bool = False
    ) -> list[str] | list[tuple[str, float]]:
        """Members scored within [min, max] (``(`` before a bound excludes it)."""
        low, low_open = _bound(min)
        high, high_open = _bound(max)
        found = [
            (score, member)
            for member, score in self._zset(name).items()
            if (score > low if low_open else score >= low)
            and (score < high if high_open else score <= high)
        ]
        if withscores:
            return [(member, float(score)) for score, member in sorted(found)]
        return [member for _, member in sorted(found)]

    def zmscore(self, key: str, members: list[str]) -> list[float | None]:
        """Each member's score, None when absent."""
        scores = self._zset(key)
        return [float(scores[m]) if m in scores else None for m in members]


class MemoryPipeline:
    """Queues reads; :meth:`execute` answers them in order."""

    def __init__(self, reads: MemoryReads) -> None:
        self.reads = reads
        self.queued: list[tuple[str, tuple[object, ...]]] = []

    def _queue(self, command: str, *args: object) -> MemoryPipeline:
        self.queued.append((command, args))
        return self

    def get(self, name: str) -> object:
        """Queue :meth:`MemoryReads.get`."""
        return self._queue("get", name)

    def hgetall(self, name: str) -> object:
        """Queue :meth:`MemoryReads.hgetall`."""
        return self._queue("hgetall", name)

    def pfcount(self, *sources: str) -> object:
        """Queue :meth:`MemoryReads.pfcount`."""
        return self._queue("pfcount", *sources)

    def zrevrange(self, name: str, start: int, end: int, withscores: bool = False) -> object:
        """Queue :meth:`MemoryReads.zrevrange`."""
        return self._queue("zrevrange", name, start, end, withscores)

    def zrangebyscore(
        self, name: str, min: float | str, max: float | str, *, withscores: bool = False
    ) -> object:
        """Queue :meth:`MemoryReads.zrangebyscore`."""
        return self._queue("zrangebyscore", name, min, max, withscores)

    def zmscore(self, key: str, members: list[str]) -> object:
        """Queue :meth:`MemoryReads.zmscore`."""
        return self._queue("zmscore", key, members)

    def pfmerge(self, dest: str, *sources: str) -> object:
        """Queue :meth:`MemoryReads.pfmerge`."""
        return self._queue("pfmerge", dest, *sources)

    def expire(self, name: str, time: int) -> object:
        """Queue :meth:`MemoryReads.expire`."""
        return self._queue("expire", name, time)

    def exists(self, *names: str) -> object:
        """Queue :meth:`MemoryReads.exists`."""
        return self._queue("exists", *names)

    def delete(self, *names: str) -> object:
        """Queue :meth:`MemoryReads.delete`."""
        return self._queue("delete", *names)

    def execute(self, raise_on_error: bool = True) -> list[object]:
        """The replies, in the order the commands were queued."""
        out = [getattr(self.reads, command)(*args) for command, args in self.queued]
        self.queued.clear()
        return out


def _bound(text: float | str) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound: its value and whether it is exclusive."""
    raw = str(text)
    return float(raw.removeprefix("(")), raw.startswith("(")
