"""Redis clients for one node or a Redis Cluster, chosen by the address.

``KPI_REDIS_URL`` is a redis-py URL for one node (``redis://host:port/0``,
``rediss://`` with TLS) or, for a cluster, the same with ``+cluster`` after the scheme
(``redis+cluster://host:port``, ``rediss+cluster://host:port``): any node of the
cluster, which tells the client the others (``CLUSTER SLOTS``). A cluster has only
database 0. redis-py's cluster client sends each command to the node that owns its
key's slot and follows ``MOVED`` and ``ASK`` redirections when a slot moves
(resharding, a replica promoted after its master failed).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from streams.common.errors import SettingsError

AsyncClient: TypeAlias = aioredis.Redis | AsyncRedisCluster
SyncClient: TypeAlias = redis.Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_address(url: str) -> str | None:
    """The redis-py URL of a cluster address (``redis+cluster://...``), else None.

    Raises :class:`SettingsError` for a cluster address naming a database other than 0.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _CLUSTER_SCHEMES:
        return None
    host, _, database = rest.partition("/")
    if database not in ("", "0"):
        raise SettingsError(f"a Redis Cluster has only database 0, not {database!r}: {url}")
    return f"{_CLUSTER_SCHEMES[scheme]}://{host}"


def async_client(url: str, **options: Any) -> AsyncClient:
    """An asyncio client for ``url`` (one node or a cluster); ``options`` as redis-py's."""
    address = cluster_address(url)
    if address is None:
        return aioredis.Redis.from_url(url, **options)
    return AsyncRedisCluster.from_url(address, **_cluster_options(options))


def sync_client(url: str, **options: Any) -> SyncClient:
    """A blocking client for ``url`` (one node or a cluster); ``options`` as redis-py's."""
    address = cluster_address(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    return RedisCluster.from_url(address, **_cluster_options(options))


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, RedisCluster | AsyncRedisCluster)


def _cluster_options(options: dict[str, Any]) -> dict[str, Any]:
    # The cluster client checks its nodes itself; per-connection health checks are
    # options of one node's pool.
    return {k: v for k, v in options.items() if k != "health_check_interval"}


__all__ = [
    "AsyncClient",
    "SyncClient",
    "async_client",
    "cluster_address",
    "is_cluster",
    "sync_client",
]
