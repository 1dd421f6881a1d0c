"""Seeded promotion-night clickstream with its own exact ground truth.

The ground truth is computed here, from the generated events, with this
module's own bucketing (``zoneinfo`` and ``datetime``), never with the
service's code, so tests that compare the two can fail.

    python -m loadtest.generator --events 50000 --file events.jsonl --truth truth.json
    python -m loadtest.generator --kafka 127.0.0.1:19092 --events 50000 --truth truth.json
    python -m loadtest.generator --kafka 127.0.0.1:19092 --live --rate 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

KNOWN_CHANNELS = ("search", "ads", "social", "direct", "email", "affiliate", "other")
# Raw sources as they arrive; the last three are not on the allow-list and must count as "other".
CHANNEL_WEIGHTS = {
    "search": 30,
    "ads": 22,
    "social": 15,
    "direct": 18,
    "email": 6,
    "affiliate": 5,
    "other": 1,
    "tiktok-live": 2,
    "weibo": 1,
}
PAGE_FLOW = {
    "home": (("category", 35), ("search", 25), ("product", 25), ("campaign", 15)),
    "category": (("product", 60), ("category", 20), ("search", 20)),
    "search": (("product", 70), ("search", 30)),
    "campaign": (("product", 60), ("campaign", 25), ("home", 15)),
    "product": (("product", 35), ("cart", 30), ("category", 20), ("home", 15)),
    "cart": (("checkout", 55), ("product", 45)),
    "checkout": (("user_center", 60), ("home", 40)),
    "user_center": (("home", 100),),
    "login": (("home", 100),),
}
DEVICES = (("app", 55), ("mobile_web", 30), ("pc", 15))
BAD_KINDS = ("malformed_json", "missing_field", "unknown_type")
GRANULARITIES = ("m", "h", "d")


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...] | dict[str, int]) -> str:
    items = list(weighted.items()) if isinstance(weighted, dict) else list(weighted)
    return rng.choices([k for k, _ in items], [w for _, w in items])[0]


@dataclass
class GroundTruth:
    """Exact answers: PV and distinct visitors per granularity, bucket start and channel."""

    timezone: str
    pageviews: dict[str, dict[int, Counter[str]]] = field(
        default_factory=lambda: {g: defaultdict(Counter) for g in GRANULARITIES}
    )
    visitors: dict[str, dict[int, dict[str, set[str]]]] = field(
        default_factory=lambda: {g: defaultdict(lambda: defaultdict(set)) for g in GRANULARITIES}
    )
    rejected: Counter[str] = field(default_factory=Counter)
    events: int = 0

    def add(self, event_ms: int, channel: str, visitor: str) -> None:
        """Count one valid page view."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(event_ms / 1000, zone)
        minute = local.replace(second=0, microsecond=0)
        starts = {
            "m": minute,
            "h": minute.replace(minute=0),
            "d": minute.replace(hour=0, minute=0),
        }
        label = channel if channel in KNOWN_CHANNELS else "other"
        for gran, start in starts.items():
            epoch = int(start.timestamp())
            self.pageviews[gran][epoch][label] += 1
            self.visitors[gran][epoch][label].add(visitor)
            self.visitors[gran][epoch]["_all"].add(visitor)
        self.events += 1

    def pv(self, gran: str, start: int, channel: str | None = None) -> int:
        """Page views in a bucket (all channels when ``channel`` is None)."""
        counts = self.pageviews[gran].get(start, Counter())
        return sum(counts.values()) if channel is None else counts[channel]

    def uv(self, gran: str, start: int, channel: str = "_all") -> int:
        """Distinct visitors in a bucket."""
        return len(self.visitors[gran].get(start, {}).get(channel, set()))

    def uv_over(self, minute_starts: list[int], channel: str = "_all") -> int:
        """Distinct visitors over several minute buckets (rolling windows)."""
        seen: set[str] = set()
        for start in minute_starts:
            seen |= self.visitors["m"].get(start, {}).get(channel, set())
        return len(seen)

    def to_json(self) -> dict[str, object]:
        """Plain counts, for files."""
        return {
            "timezone": self.timezone,
            "events": self.events,
            "rejected": dict(self.rejected),
            "pageviews": {
                g: {str(s): dict(c) for s, c in buckets.items()}
                for g, buckets in self.pageviews.items()
            },
            "visitors": {
                g: {str(s): {ch: len(v) for ch, v in chans.items()} for s, chans in buckets.items()}
                for g, buckets in self.visitors.items()
            },
        }


@dataclass
class Generated:
    """Messages in event-time order (key, value) and their ground truth."""

    messages: list[tuple[bytes, bytes]]
    truth: GroundTruth


def promotion_shape(fraction: float) -> float:
    """Relative traffic at ``fraction`` of the run: a base, a ramp, and a spike at 0.6."""
    return 1.0 + 0.8 * fraction + 4.0 * math.exp(-(((fraction - 0.6) / 0.06) ** 2))


def generate(
    events: int,
    start_ms: int,
    duration_s: float,
    seed: int = 11,
    bad_ratio: float = 0.0,
    timezone: str = "Asia/Shanghai",
    visitor_pool: int | None = None,
    clip: bool = True,
) -> Generated:
    """``events`` page views in sessions starting in ``[start, start + duration)``.

    Sessions are cut at the end of the span unless ``clip`` is False (live mode
    lets them run on). Visitors are drawn from ``visitor_pool`` ids (default:
    one per six views, so most visitors come back).
    """
    rng = random.Random(seed)
    truth = GroundTruth(timezone)
    end_ms = start_ms + int(duration_s * 1000)
    rows: list[tuple[int, bytes, bytes]] = []
    visitors = visitor_pool or max(1, events // 6)
    produced = 0
    ns = uuid.UUID(int=seed)
    while produced < events:
        visitor = f"v{rng.randrange(visitors):07d}"
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        channel = _pick(rng, CHANNEL_WEIGHTS)
        device = _pick(rng, DEVICES)
        campaign = "double11" if channel in ("ads", "social") and rng.random() < 0.7 else ""
        # Rejection sampling on the promotion shape places the session start.
        while True:
            fraction = rng.random()
            if rng.random() * 5.8 < promotion_shape(fraction):
                break
        t = start_ms + int(fraction * duration_s * 1000)
        page_type = (
            "campaign" if campaign else _pick(rng, (("home", 50), ("search", 20), ("product", 30)))
        )
        for _ in range(1 + min(int(rng.expovariate(1 / 5)), 40)):
            if (clip and t >= end_ms) or produced >= events:
                break
            page = f"/{page_type}/{rng.randrange(500)}" if page_type != "home" else "/"
            doc = {
                "schema": 1,
                "type": "page_view",
                "event_id": str(uuid.uuid5(ns, f"{produced}")),
                "event_time": datetime.fromtimestamp(t / 1000, ZoneInfo(timezone)).isoformat(
                    timespec="milliseconds"
                ),
                "visitor_id": visitor,
                "session_id": session,
                "page": page,
                "page_type": page_type,
                "channel": channel,
                "campaign": campaign,
                "device": device,
            }
            rows.append((t, visitor.encode(), json.dumps(doc, separators=(",", ":")).encode()))
            truth.add(t, channel, visitor)
            produced += 1
            if bad_ratio and rng.random() < bad_ratio:
                kind, raw = _bad_event(rng, doc)
                rows.append((t, visitor.encode(), raw))
                truth.rejected[kind] += 1
            t += int(rng.uniform(3, 90) * 1000)
            page_type = _pick(rng, PAGE_FLOW.get(page_type, (("home", 100),)))
    rows.sort(key=lambda row: row[0])
    return Generated([(key, value) for _, key, value in rows], truth)


def _bad_event(rng: random.Random, doc: dict[str, object]) -> tuple[str, bytes]:
    kind = rng.choice(BAD_KINDS)
    if kind == "malformed_json":
        return kind, json.dumps(doc).encode()[:-7]
    broken = dict(doc)
    if kind == "missing_field":
        del broken["visitor_id"]
    else:
        broken["type"] = "page_vue"
    return kind, json.dumps(broken).encode()


def write_file(messages: list[tuple[bytes, bytes]], path: Path) -> None:
    """JSON Lines, one raw message a line."""
    with path.open("wb") as out:
        for _, value in messages:
            out.write(value.replace(b"\n", b" ") + b"\n")


@dataclass(frozen=True)
class Produced:
    """Where the messages landed: last offset per partition, and how long it took."""

    last_offsets: dict[int, int]
    seconds: float


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    progress: bool = False,
    pause_every: int = 0,
    pause_s: float = 0.0,
    partitions: list[int] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> Produced:
    """Send every message by its key (or to ``partitions[i]``), optionally paced."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
        **(client_kwargs or {}),
    )
    await producer.start()
    started = time.perf_counter()
    last: dict[int, int] = {}
    try:
        pending = []
        for i, (key, value) in enumerate(messages, 1):
            partition = None if partitions is None else partitions[i - 1]
            pending.append(await producer.send(topic, value=value, key=key, partition=partition))
            if len(pending) >= 5000 or (pause_every and i % pause_every == 0):
                for meta in await asyncio.gather(*pending):
                    last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
                pending.clear()
                if progress:
                    print(f"\rproduced {i:,}/{len(messages):,}", end="", file=sys.stderr)
                if pause_every and i % pause_every == 0:
                    await asyncio.sleep(pause_s)
        for meta in await asyncio.gather(*pending):
            last[meta.partition] = max(last.get(meta.partition, -1), meta.offset)
    finally:
        await producer.stop()
    if progress:
        print(file=sys.stderr)
    return Produced(last, time.perf_counter() - started)


async def produce_live(bootstrap: str, topic: str, rate: float, seed: int, timezone: str) -> None:
    """Endless traffic in real time: sessions are planned a minute ahead, sent when due."""
    import heapq

    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    round_s = 60
    pending: list[tuple[int, int, bytes, bytes]] = []
    planned_until = int(time.time() * 1000)
    order = 0
    try:
        while True:
            now_ms = int(time.time() * 1000)
            if planned_until - now_ms < 10_000:
                # Traffic follows the promotion shape over each hour.
                fraction = (planned_until / 1000 % 3600) / 3600
                count = max(1, int(rate * round_s * promotion_shape(fraction) / 2.0))
                batch = generate(
                    count,
                    planned_until,
                    round_s,
                    seed + order,
                    bad_ratio=0.002,
                    timezone=timezone,
                    visitor_pool=int(rate * 600),
                    clip=False,
                )
                for key, value in batch.messages:
                    event_ms = _event_ms(value, planned_until)
                    heapq.heappush(pending, (event_ms, order, key, value))
                    order += 1
                planned_until += round_s * 1000
            while pending and pending[0][0] <= now_ms:
                _, _, key, value = heapq.heappop(pending)
                await producer.send(topic, value=value, key=key)
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()


def _event_ms(value: bytes, fallback: int) -> int:
    try:
        stamp = json.loads(value)["event_time"]
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except (ValueError, KeyError, TypeError):
        return fallback  # an intentionally broken event: send it now


def main(argv: list[str] | None = None) -> int:
    """Command line of the generator."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=50_000, help="page views to generate")
    p.add_argument("--minutes", type=float, default=30.0, help="event-time span, ending now")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--bad-ratio", type=float, default=0.0, help="share of extra invalid events")
    p.add_argument("--timezone", default="Asia/Shanghai")
    p.add_argument("--file", type=Path, help="write JSON Lines here")
    p.add_argument("--kafka", help="bootstrap servers to produce to")
    p.add_argument("--topic", default="clickstream")
    p.add_argument("--truth", type=Path, help="write the ground truth JSON here")
    p.add_argument("--live", action="store_true", help="produce endlessly, stamped now")
    p.add_argument("--rate", type=float, default=200.0, help="live events per second (base)")
    args = p.parse_args(argv)
    if args.live:
        if not args.kafka:
            p.error("--live needs --kafka")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(produce_live(args.kafka, args.topic, args.rate, args.seed, args.timezone))
        return 0
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - int(args.minutes * 60_000)
    generated = generate(
        args.events, start_ms, args.minutes * 60, args.seed, args.bad_ratio, args.timezone
    )
    if args.file:
        write_file(generated.messages, args.file)
    if args.kafka:
        produced = asyncio.run(produce(args.kafka, args.topic, generated.messages, progress=True))
        print(
            f"produced {len(generated.messages):,} messages in {produced.seconds:.1f}s",
            file=sys.stderr,
        )
    if args.truth:
        args.truth.write_text(json.dumps(generated.truth.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
