"""Redis memory of one page ranking key at the cap (``PAGE_RANKING_CAP`` pages).

Fills a sorted set with that many distinct page paths of ``--length`` characters and
scores like a day's views, as the apply script leaves a ranking, then prints
``MEMORY USAGE`` (exact, every element counted) and deletes it. Needs the local stack
(``./run up``) or ``KPI_REDIS_URL``.

    python -m loadtest.ranking_memory --length 40
"""

from __future__ import annotations

import argparse
import os
import random
import uuid

import redis

from streams.common.settings import Settings
from streams.store.sink import PAGE_RANKING_CAP


def main() -> int:
    """Fill, measure, delete; print one table row per length."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--members", type=int, default=PAGE_RANKING_CAP)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k.startswith("KPI_")}
    client = redis.Redis.from_url(Settings.from_env(env).redis_url)
    rng = random.Random(1)
    print(f"{'members':>9}{'path chars':>12}{'MEMORY USAGE':>16}{'bytes/member':>14}")
    for length in args.length:
        key = f"ranking-memory-{uuid.uuid4().hex[:8]}"
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(args.members):
                page = f"/p/{i:07d}".ljust(length, "x")
                pipe.zadd(key, {page: rng.randint(1, 5_000)})
                if i % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()
            size = int(client.memory_usage(key, samples=0) or 0)
            members = int(client.zcard(key))
        finally:
            client.delete(key)
        print(f"{members:>9,}{length:>12}{size:>16,}{size / max(1, members):>14.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
