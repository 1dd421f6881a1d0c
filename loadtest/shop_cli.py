"""Command line of the shop generator: files, Kafka, or endless live traffic.

python -m loadtest.shop_cli --minutes 60 --visitors 5000 --out events/   # JSON Lines per topic
python -m loadtest.shop_cli --kafka 127.0.0.1:19092 --minutes 60          # produce, then exit
python -m loadtest.shop_cli --kafka 127.0.0.1:19092 --live --rate 300     # endless, real time
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from loadtest.generator import produce
from loadtest.shop_generator import generate_shop

TOPICS = ("clickstream", "orders", "chat", "marketing")
MESSAGES_PER_VISITOR = 7  # measured: about 7 messages on all topics per generated visitor


def _event_ms(value: bytes, fallback: int) -> int:
    try:
        stamp = json.loads(value)["event_time"]
        if isinstance(stamp, int | float):
            return int(stamp)
        from datetime import datetime

        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except (ValueError, KeyError, TypeError):
        return fallback  # an intentionally broken event: send it when its round starts


CHATS_PER_MINUTE = 5
"""Live chats begun per minute: a conversation stays open about 5.5 minutes (to its close,
an abandonment, or the chat system closing it when idle), so about 28 are open at once,
below the 8 agents' capacity of 40 (5 each), and waits stay short
(tests/unit/test_shop_generator.py)."""
OVERRUN_S = 3_600
"""How long a live round's visits and chats may go on after the round."""


async def produce_live(
    bootstrap: str,
    topics: Mapping[str, str],
    rate: float,
    seed: int,
    round_s: int = 300,
    chats_per_minute: float = CHATS_PER_MINUTE,
) -> None:
    """Endless shop traffic in real time: rounds are planned ahead and sent when due.

    A round's visits and conversations go on past its end (:data:`OVERRUN_S`), as they
    would in a shop, instead of stopping with the round.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    pending: list[tuple[int, int, str, bytes, bytes]] = []
    planned_until = int(time.time() * 1000)
    order = 0
    round_no = 0
    try:
        while True:
            now_ms = int(time.time() * 1000)
            if planned_until - now_ms < 30_000:
                visitors = max(1, int(rate * round_s / MESSAGES_PER_VISITOR))
                traffic = generate_shop(
                    seed + round_no,
                    planned_until,
                    round_s,
                    visitors,
                    bad_ratio=0.002,
                    conversations=round(chats_per_minute * round_s / 60),
                    overrun_s=OVERRUN_S,
                )
                for kind, messages in traffic.messages.items():
                    for key, value in messages:
                        heapq.heappush(
                            pending, (_event_ms(value, planned_until), order, kind, key, value)
                        )
                        order += 1
                planned_until += round_s * 1000
                round_no += 1
            while pending and pending[0][0] <= now_ms:
                _, _, kind, key, value = heapq.heappop(pending)
                await producer.send(topics[kind], value=value, key=key)
            await asyncio.sleep(0.2)
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    """Generate shop traffic to files or Kafka."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--minutes", type=float, default=60.0, help="event-time span ending now")
    p.add_argument("--visitors", type=int, default=5_000)
    p.add_argument("--bad-ratio", type=float, default=0.0, help="share of invalid messages")
    p.add_argument("--out", type=Path, help="folder for <topic>.jsonl files")
    p.add_argument("--kafka", help="bootstrap servers to produce to")
    for kind in TOPICS:
        p.add_argument(f"--{kind}-topic", default=kind, help=f"topic of {kind} events")
    p.add_argument("--live", action="store_true", help="endless traffic stamped in real time")
    p.add_argument("--rate", type=float, default=200.0, help="live messages per second")
    p.add_argument(
        "--chats-per-minute",
        type=float,
        default=CHATS_PER_MINUTE,
        help="live customer-service chats begun per minute",
    )
    args = p.parse_args(argv)
    topics = {kind: getattr(args, f"{kind}_topic") for kind in TOPICS}
    if args.live:
        if not args.kafka:
            p.error("--live needs --kafka")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                produce_live(
                    args.kafka, topics, args.rate, args.seed, chats_per_minute=args.chats_per_minute
                )
            )
        return 0
    end_ms = int(time.time() * 1000)
    traffic = generate_shop(
        args.seed,
        end_ms - int(args.minutes * 60_000),
        args.minutes * 60,
        args.visitors,
        bad_ratio=args.bad_ratio,
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for kind, messages in traffic.messages.items():
            with (args.out / f"{kind}.jsonl").open("wb") as out:
                for _, value in messages:
                    out.write(value + b"\n")
    if args.kafka:
        for kind, messages in traffic.messages.items():
            produced = asyncio.run(produce(args.kafka, topics[kind], messages))
            print(f"{kind}: {len(messages):,} messages in {produced.seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
