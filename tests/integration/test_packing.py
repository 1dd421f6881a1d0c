"""Packed apply arguments: what the Python side packs, Redis's Lua unpacks, unchanged."""

from __future__ import annotations

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.store.sink import pack_list
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

UNPACK = "return cmsgpack.unpack(ARGV[1])"


def through_lua(client: redis.Redis, packed: bytes) -> list[str]:
    """The strings the apply script sees for one packed argument."""
    return [item.decode() for item in client.eval(UNPACK, 0, packed)]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.text(), min_size=1, max_size=30))
def test_any_text_round_trips(stack: Stack, items: list[str]) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    assert through_lua(client, pack_list(items)) == items


def test_non_ascii_long_and_many_items_round_trip(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    items = ["/p/1", "", "广告:渠道", "a\0b", "x" * 70_000, "é"]  # 70,000 bytes: a str32
    assert through_lua(client, pack_list(items)) == items
    many = [f"id-{i}" for i in range(70_000)]  # more than 65,535 items: an array32
    assert through_lua(client, pack_list(iter(many))) == many
    assert sorted(through_lua(client, pack_list({"b", "a"}))) == ["a", "b"]
