"""The connection of Redis dispatch, to one Redis or to a Redis Cluster, and its Lua scripts.

A URL ``redis://`` / ``rediss://`` names one Redis; ``redis+cluster://host:port`` (or
``rediss+cluster://``) names any node of a Redis Cluster, whose other nodes are discovered.
On a cluster every command, script and ``XREADGROUP`` touches the keys of one hash slot only
(``_keys`` tags the keys that travel together); pipelines are split by node by the client.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisClusterException
from redis.maint_notifications import MaintNotificationsConfig

from ..errors import InvalidArgumentError
from . import _keys

__all__ = ["MAX_CONNECTIONS", "ROUTE", "TIDY", "UNROUTE", "AnyRedis", "connect", "slot_groups"]

AnyRedis = aioredis.Redis | RedisCluster

MAX_CONNECTIONS: Final = 100  # per client (per node of a cluster)
_CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# Routes workflow hints to one worker's sticky streams while its alive key exists. KEYS: the
# worker's alive key, then the sticky stream of each hint (one slot: they share a hash tag);
# ARGV: the hint field, maxlen, then the hints. Returns 1 when it routed them, 0 when the
# worker is gone (the caller then adds them to their partitions' streams).
ROUTE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local field, maxlen = ARGV[1], ARGV[2]
for n = 3, #ARGV do
  redis.call('XADD', KEYS[n - 1], 'MAXLEN', '~', maxlen, '*', field, ARGV[n])
end
return 1
"""
# Removes the route KEYS[1] if it still names worker ARGV[1] (another may have taken it over).
UNROUTE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Tidies the streams in KEYS (group ARGV[1]; one slot on a cluster), so that they hold what is
# still to do and no more than that: trims the entries that were delivered and acknowledged
# (below the oldest pending entry, or below the last delivered one), and removes consumers
# that hold nothing and have not read for ARGV[2] ms (a killed worker's; a live one that is
# removed is made again by its next read). XINFO replies are flat name/value lists.
TIDY: Final = """
local group, idle = ARGV[1], tonumber(ARGV[2])
local function get(reply, name)
  for i = 1, #reply, 2 do
    if reply[i] == name then return reply[i + 1] end
  end
end
for _, stream in ipairs(KEYS) do
  if redis.call('EXISTS', stream) == 1 then
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      if get(g, 'name') == group then
        local minid = get(g, 'last-delivered-id')
        local pending = redis.call('XPENDING', stream, group)
        if pending[1] > 0 then minid = pending[2] end
        redis.call('XTRIM', stream, 'MINID', minid)
        for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
          if get(c, 'pending') == 0 and get(c, 'idle') > idle then
            redis.call('XGROUP', 'DELCONSUMER', stream, group, get(c, 'name'))
          end
        end
      end
    end
  end
end
return 0
"""


def connect(url: str, connect_timeout: float, block: float) -> AnyRedis:
    """A client on ``url``: it connects on first use; a malformed URL raises at once."""
    scheme = urlsplit(url).scheme
    try:
        if scheme in _CLUSTER_SCHEMES:
            return _cluster(urlunsplit(urlsplit(url)._replace(scheme=_CLUSTER_SCHEMES[scheme])),
                            connect_timeout, block)
        # One quick retry reconnects a pooled connection that a Redis restart broke; longer
        # outages surface as StoreUnavailableError and the caller's loop backs off. The pool
        # makes callers wait for a free connection (redis-py's default pool raises
        # MaxConnectionsError once 100 are in use: 2,000 starts at once did).
        pool = aioredis.BlockingConnectionPool.from_url(  # pyright: ignore[reportUnknownMemberType]
            url, max_connections=MAX_CONNECTIONS, timeout=None,
            socket_connect_timeout=connect_timeout, socket_timeout=block + 10.0,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1))
        client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    except (ValueError, RedisClusterException) as exc:  # a bad scheme, port or database
        raise InvalidArgumentError(
            f"{exc} (Redis URLs: redis://host:6379/0, rediss://..., or "
            "redis+cluster://host:6379 for any node of a Redis Cluster)") from exc
    client.set_response_callback("XAUTOCLAIM", _raw)  # keep the cursor and ids
    return client


def _cluster(url: str, connect_timeout: float, block: float) -> RedisCluster:
    if urlsplit(url).path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, not {urlsplit(url).path!r}")
    # The cluster client keeps a pool per node; callers beyond it would get
    # MaxConnectionsError, so each node's pool is larger than the calls a process makes at once
    # (publishes and acks are batched; claims are bounded by a worker's concurrency).
    # (Maintenance notifications, a managed service's feature, would need CLIENT in the ACLs.)
    client = RedisCluster.from_url(
        url, max_connections=10 * MAX_CONNECTIONS, socket_connect_timeout=connect_timeout,
        socket_timeout=block + 10.0, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 1),
        maint_notifications_config=MaintNotificationsConfig(enabled=False))
    client.set_response_callback("XAUTOCLAIM", _raw)
    return client


def slot_groups(streams: list[str], cluster: bool) -> list[list[str]]:
    """``streams`` split so that each group may go in one command: all of them on one Redis,
    those of one hash tag (one slot) each on a cluster."""
    if not cluster:
        return [streams] if streams else []
    groups: dict[str, list[str]] = {}
    for stream in streams:
        groups.setdefault(_keys.hash_tag(stream), []).append(stream)
    return list(groups.values())


def _raw(response: Any, **options: Any) -> Any:
    return response
