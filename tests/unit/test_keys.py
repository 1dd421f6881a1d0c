import pytest

from streams.keys import KeyLayout, Shard
from streams.timebuckets import Bucket, Granularity


def test_layout_is_the_documented_one() -> None:
    layout = KeyLayout("kpi")
    shard = Shard("clickstream", 3)
    bucket = Bucket(Granularity.HOUR, 1_795_708_800)
    assert layout.shards() == "kpi:shards"
    assert layout.applied(shard) == "kpi:{clickstream.3}:applied"
    assert layout.watermark(shard) == "kpi:{clickstream.3}:watermark"
    assert layout.ops(shard) == "kpi:{clickstream.3}:ops"
    assert layout.pageviews(shard, bucket) == "kpi:{clickstream.3}:pv:h:1795708800"
    assert layout.visitors(shard, bucket, "ads") == "kpi:{clickstream.3}:uv:h:1795708800:ads"


def test_every_key_of_a_shard_shares_one_cluster_hash_tag() -> None:
    layout = KeyLayout("p")
    shard = Shard("a.b", 12)
    bucket = Bucket(Granularity.MINUTE, 60)
    keys = [
        layout.applied(shard),
        layout.watermark(shard),
        layout.ops(shard),
        layout.pageviews(shard, bucket),
        layout.visitors(shard, bucket, "_all"),
    ]
    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert tags == {"a.b.12"}


def test_parse_bucket_keys() -> None:
    layout = KeyLayout("kpi")
    shard = Shard("clicks.x", 0)
    assert layout.parse_bucket_key("kpi:{clicks.x.0}:pv:d:100") == (
        shard,
        "pv",
        Bucket(Granularity.DAY, 100),
        None,
    )
    assert layout.parse_bucket_key("kpi:{clicks.x.0}:uv:m:60:search") == (
        shard,
        "uv",
        Bucket(Granularity.MINUTE, 60),
        "search",
    )


@pytest.mark.parametrize(
    "key",
    [
        "other:{c.0}:pv:d:1",
        "kpi:c.0:pv:d:1",
        "kpi:{c.0}:pv:x:1",
        "kpi:{c.0}:zz:d:1",
        "kpi:{c}:pv:d:1",
    ],
)
def test_parse_rejects_foreign_keys(key: str) -> None:
    with pytest.raises(ValueError):
        KeyLayout("kpi").parse_bucket_key(key)


def test_shard_id_round_trip() -> None:
    assert Shard.parse("my.topic.7") == Shard("my.topic", 7)
    with pytest.raises(ValueError):
        Shard.parse("no-partition")
