"""The exporter's own union of HyperLogLogs counts what Redis's PFCOUNT counts.

Random sets of random sizes (empty, sparse, dense, past the sparse limit), one to
eight keys at a time on the stack's Redis: ``count_union`` of their ``GET`` strings
must equal ``PFCOUNT`` over the same keys, and each key alone its single-key count.
"""

from __future__ import annotations

import random
import uuid

import pytest
import redis

from streams.store.hll import count_union, registers
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


def test_the_union_counts_as_pfcount_on_many_random_sets(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    rng = random.Random(2026)
    tag = f"hll{uuid.uuid4().hex[:6]}"
    sizes = [0, 1, 2, 10, 100, 500, 1_000, 3_000, 10_000, 50_000, 200_000]
    compared = dense = sparse = 0
    try:
        for trial in range(150):
            keys = [f"{{{tag}}}:{trial}:{k}" for k in range(rng.randint(1, 8))]
            for key in keys:
                size = rng.choice(sizes)
                pool = rng.randint(1, 3)  # overlapping members between keys
                members = [f"m{pool}-{rng.randrange(size * 2 + 1)}" for _ in range(size)]
                pipe = client.pipeline(transaction=False)
                pipe.pfadd(key, "seed")
                for start in range(0, len(members), 10_000):
                    pipe.pfadd(key, *members[start : start + 10_000])
                pipe.execute()
            raws = client.mget(keys)
            for raw in raws:
                assert raw is not None
                dense += raw[4] == 0
                sparse += raw[4] == 1
            assert count_union(raws) == client.pfcount(*keys), keys
            for key, raw in zip(keys, raws, strict=True):
                assert count_union([raw]) == client.pfcount(key)
            compared += 1
        assert count_union([None]) == 0 and registers(None).sum() == 0
    finally:
        for key in client.scan_iter(f"{{{tag}}}:*", count=10_000):
            client.delete(key)
    assert compared == 150 and dense > 20 and sparse > 20  # both encodings were met
