"""The service needs no Redis access outside its key prefix: an ACL user limited to
``<prefix>:*`` (and without dangerous commands) can run the sink and the exporter."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from streams.common.keys import Shard
from streams.common.settings import Settings
from streams.worker.pipeline import DeadLetterList
from streams.worker.runtime import batch_processor, kpi_collector
from tests.integration.clock import Clock
from tests.integration.conftest import Stack
from tests.integration.test_sink_and_exporter import ANCHOR, At

pytestmark = pytest.mark.integration


def test_an_acl_user_limited_to_the_prefix_is_enough(stack: Stack, clock: Clock) -> None:
    at = At(clock.latest(ANCHOR))
    prefix = f"acl{uuid.uuid4().hex[:6]}"
    user, password = f"kpi-{prefix}", uuid.uuid4().hex
    admin = redis.Redis.from_url(stack.redis_url)
    admin.execute_command(
        "ACL",
        "SETUSER",
        user,
        "on",
        f">{password}",
        "resetkeys",
        f"~{prefix}:*",
        "+@all",
        "-@dangerous",
        "-@admin",
    )
    host_port = stack.redis_url.removeprefix("redis://").split("/")[0]
    settings = Settings(
        redis_url=f"redis://{user}:{password}@{host_port}/0",
        redis_prefix=prefix,
        minute_retention_seconds=4 * 86_400,  # as in test_sink_and_exporter
    )

    async def apply() -> None:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            processor = batch_processor(settings, client, DeadLetterList())
            processor.clock_ms = lambda: at.ms
            await processor.process(Shard("clickstream", 0), at.clickstream_records())
        finally:
            await client.aclose()

    asyncio.run(apply())
    collector = kpi_collector(settings)
    collector.now_s = lambda: at.s
    registry = CollectorRegistry()
    registry.register(collector)
    samples = {
        (s.name, s.labels.get("window", "")): s.value for f in registry.collect() for s in f.samples
    }
    assert samples[("shop_exporter_redis_up", "")] == 1
    assert samples[("shop_page_views", "day")] == 10
    # The same user is refused outside the prefix, so the test above proves containment.
    limited = redis.Redis.from_url(settings.redis_url)
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.set("elsewhere", 1)
    admin.execute_command("ACL", "DELUSER", user)
