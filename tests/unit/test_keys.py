import pytest

from streams.common.keys import KeyLayout, Shard
from streams.common.timebuckets import Bucket, Granularity


def test_layout_is_the_documented_one() -> None:
    layout = KeyLayout("kpi")
    shard = Shard("clickstream", 3)
    bucket = Bucket(Granularity.HOUR, 1_795_708_800)
    assert layout.shards() == "kpi:shards"
    assert layout.applied(shard) == "kpi:{clickstream.3}:applied"
    assert layout.watermark(shard) == "kpi:{clickstream.3}:watermark"
    assert layout.ops(shard) == "kpi:{clickstream.3}:ops"
    assert layout.counters(shard, bucket) == "kpi:{clickstream.3}:b:h:1795708800"
    assert layout.distinct(shard, bucket, "uv|channel=ads") == (
        "kpi:{clickstream.3}:u:h:1795708800:uv|channel=ads"
    )
    assert (
        layout.ranking(shard, bucket, "page_views")
        == "kpi:{clickstream.3}:r:h:1795708800:page_views"
    )
    assert layout.buyer_period(shard, bucket) == "kpi:{clickstream.3}:bp:h:1795708800"
    assert layout.tally(shard, "agent_open") == "kpi:{clickstream.3}:t:agent_open"
    assert layout.state(shard, "session") == "kpi:{clickstream.3}:s:session"
    assert layout.live_set(shard, "waiting") == "kpi:{clickstream.3}:z:waiting"


def test_every_key_of_a_shard_shares_one_cluster_hash_tag() -> None:
    layout = KeyLayout("p")
    shard = Shard("a.b", 12)
    bucket = Bucket(Granularity.MINUTE, 60)
    keys = [
        layout.applied(shard),
        layout.watermark(shard),
        layout.ops(shard),
        layout.counters(shard, bucket),
        layout.distinct(shard, bucket, "uv|_all=_all"),
        layout.ranking(shard, bucket, "x"),
        layout.buyer_period(shard, bucket),
        layout.tally(shard, "t"),
        layout.state(shard, "s"),
        layout.live_set(shard, "z"),
    ]
    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert tags == {"a.b.12"}


def test_shard_id_round_trip() -> None:
    assert Shard.parse("my.topic.7") == Shard("my.topic", 7)
    for bad in ("no-partition", ".3", "t.x"):
        with pytest.raises(ValueError):
            Shard.parse(bad)
