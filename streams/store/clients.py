"""Redis clients for one node or a Redis Cluster, chosen by the address.

``KPI_REDIS_URL`` is a redis-py URL for one node (``redis://host:port/0``,
``rediss://`` with TLS) or, for a cluster, the same with ``+cluster`` after the scheme
and one or more of its nodes (``redis+cluster://host:port``,
``rediss+cluster://user:password@host1:port1,host2:port2``): the client asks the first
that answers for the others (``CLUSTER SLOTS``), so naming several lets a client start
while one of them is down. A cluster has only database 0. redis-py's cluster client
sends each command to the node that owns its key's slot and follows ``MOVED`` and
``ASK`` redirections when a slot moves (resharding, a replica promoted after its master
failed).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import ClusterNode, RedisCluster

from streams.common.errors import SettingsError

AsyncClient: TypeAlias = aioredis.Redis | AsyncRedisCluster
SyncClient: TypeAlias = redis.Redis | RedisCluster

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_address(url: str) -> tuple[str, list[tuple[str, int]]] | None:
    """A cluster address as its first node's redis-py URL and the others' (host, port).

    None for a one-node address. Raises :class:`SettingsError` for a database other than
    0 or a node without a port.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _CLUSTER_SCHEMES:
        return None
    location, _, database = rest.partition("/")
    if database not in ("", "0"):
        raise SettingsError(f"a Redis Cluster has only database 0, not {database!r}: {url}")
    credentials, at, hosts = location.rpartition("@")
    nodes = []
    for node in hosts.split(","):
        host, colon, port = node.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise SettingsError(f"a Redis Cluster node needs host:port, not {node!r}: {url}")
        nodes.append((host, int(port)))
    first = f"{_CLUSTER_SCHEMES[scheme]}://{credentials}{at}{nodes[0][0]}:{nodes[0][1]}"
    return first, nodes[1:]


def async_client(url: str, **options: Any) -> AsyncClient:
    """An asyncio client for ``url`` (one node or a cluster); ``options`` as redis-py's."""
    address = cluster_address(url)
    if address is None:
        return aioredis.Redis.from_url(url, **options)
    first, others = address
    nodes = [AsyncClusterNode(host, port) for host, port in others]
    return AsyncRedisCluster.from_url(
        first, **_cluster_options(options), **({"startup_nodes": nodes} if nodes else {})
    )


def sync_client(url: str, **options: Any) -> SyncClient:
    """A blocking client for ``url`` (one node or a cluster); ``options`` as redis-py's."""
    address = cluster_address(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    first, others = address
    nodes = [ClusterNode(host, port) for host, port in others]  # type: ignore[no-untyped-call]
    return RedisCluster.from_url(
        first, **_cluster_options(options), **({"startup_nodes": nodes} if nodes else {})
    )


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
