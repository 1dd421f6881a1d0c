"""Watermark delay never negative; an event ahead of the clock shows as "ahead" instead.

Hand-computed: a scrape at t = 1,000 s, one partition's newest event at 990 s (10 s
behind), another's at 1,120 s (two minutes ahead, within the allowed future skew).
"""

from __future__ import annotations

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.store.reader import Ops
from streams.worker.runtime import family_builder


def test_delay_is_clamped_and_the_lead_is_exported_apart() -> None:
    behind, ahead = Shard("clickstream", 0), Shard("clickstream", 1)
    ops = Ops(watermarks={behind: 990.0, ahead: 1_120.0})
    families = {f.name: f for f in family_builder(Settings())._ops_families(ops, 1_000.0)}

    def value(name: str, shard: Shard) -> float:
        (sample,) = [
            s for s in families[name].samples if s.labels["partition"] == str(shard.partition)
        ]
        return sample.value

    assert value("shop_watermark_delay_seconds", behind) == 10.0
    assert value("shop_watermark_delay_seconds", ahead) == 0.0
    assert value("shop_watermark_ahead_seconds", behind) == 0.0
    assert value("shop_watermark_ahead_seconds", ahead) == 120.0
