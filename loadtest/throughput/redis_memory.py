"""Redis's side of a run: memory of its keys, keys without an expiry, cleaning up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import redis


def used_memory(client: redis.Redis) -> int:
    """Redis ``used_memory`` in bytes."""
    info = client.info("memory")
    return int(info["used_memory"])


@dataclass(frozen=True)
class KeyCensus:
    """The keys under one prefix: how many, their summed ``MEMORY USAGE``, which never expire."""

    keys: int
    bytes: int
    unexpiring: int
    unexpiring_kinds: list[str]
    bytes_by_kind: Counter[str]


def key_census(client: redis.Redis, prefix: str) -> KeyCensus:
    """Count and size the keys under ``prefix`` (other users of the same Redis do not count)."""
    keys = list(client.scan_iter(f"{prefix}:*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.ttl(key)
        pipe.memory_usage(key, samples=0)
    answers = pipe.execute()
    kinds: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    size = 0
    for key, ttl, usage in zip(keys, answers[::2], answers[1::2], strict=True):
        size += int(usage or 0)
        by_kind[_kind(key.decode(), prefix)] += int(usage or 0)
        if ttl == -1:
            kinds[_kind(key.decode(), prefix)] += 1
    return KeyCensus(len(keys), size, sum(kinds.values()), sorted(kinds), by_kind)


def _kind(key: str, prefix: str) -> str:
    """Kind of a key, as in streams/common/keys.py: ``P:{S}:s:session`` -> ``s:session``."""
    rest = key.split("}:", 1)[1] if "}:" in key else key.removeprefix(prefix + ":")
    parts = rest.split(":")
    return ":".join(parts[:2]) if parts[0] in ("s", "t", "z") else parts[0]


KIND_NAMES = {
    "b": "counters",
    "u": "HyperLogLogs",
    "r": "rankings",
    "seen": "event ids",
    "s:session": "sessions",
    "s:visit": "visits",
}


def redis_row(
    events: int, visitors: int, census: KeyCensus, delta: int, workload: str = ""
) -> tuple[str, str, str]:
    """Redis memory per million visitors, from the run's keys and from ``used_memory``."""
    per_million = 1e6 / max(1, visitors) / 2**20
    largest = ", ".join(
        f"{KIND_NAMES.get(kind, kind)} {100 * n / max(1, census.bytes):.0f} %"
        for kind, n in census.bytes_by_kind.most_common(3)
    )
    return (
        f"Redis memory per 1 M visitors ({workload}{events:,} events, {visitors:,} visitors)",
        f"{census.bytes * per_million:,.0f} MiB (keys; largest: {largest}); used_memory delta "
        f"{delta * per_million:,.0f} MiB",
        "bounded by TTLs",
    )


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """SCAN and DEL every key under ``prefix``."""
    deleted = 0
    batch = []
    for key in client.scan_iter(f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    return deleted
