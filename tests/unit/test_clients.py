"""Cluster addresses taken apart; one-node addresses left to redis-py."""

import pytest

from streams.common.errors import SettingsError
from streams.store.clients import cluster_address


def test_a_cluster_address_names_its_first_node_and_the_others() -> None:
    assert cluster_address("redis+cluster://10.0.0.1:7000") == ("redis://10.0.0.1:7000", [])
    assert cluster_address("rediss+cluster://kpi:s3cret@a:7000,b:7001,c:7002/0") == (
        "rediss://kpi:s3cret@a:7000",
        [("b", 7001), ("c", 7002)],
    )


def test_one_node_addresses_are_not_cluster_addresses() -> None:
    assert cluster_address("redis://127.0.0.1:6379/0") is None
    assert cluster_address("rediss://user:pw@redis:6380/2") is None


@pytest.mark.parametrize(
    "url", ["redis+cluster://a:7000/1", "redis+cluster://a:7000,b", "redis+cluster://:7000"]
)
def test_a_bad_cluster_address_is_refused(url: str) -> None:
    with pytest.raises(SettingsError):
        cluster_address(url)
