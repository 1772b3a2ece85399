"""The memory store's record of what live workers host (``HostStore``)."""

from __future__ import annotations

from collections.abc import Collection

from ._state import MemoryState

__all__ = ["MemoryHosts"]


class MemoryHosts(MemoryState):
    """(kind, route, worker) -> when the worker last said it hosts the route."""

    _hosts: dict[tuple[str, str, str], float]

    async def register_hosts(self, worker: str, hosts: Collection[tuple[str, str]], *,
                             now: float) -> None:
        """Record that ``worker`` hosts ``hosts`` ((kind, route) pairs) as of ``now``."""
        table = self._host_table()
        for key in [k for k in table if k[2] == worker]:
            del table[key]
        table.update(((kind, route, worker), now) for kind, route in hosts)

    async def unregister_hosts(self, worker: str) -> None:
        """Forget what ``worker`` hosts (it stopped)."""
        await self.register_hosts(worker, (), now=0.0)

    async def unhosted(self, hosts: Collection[tuple[str, str]], *,
                       since: float) -> set[tuple[str, str]]:
        """The (kind, route) pairs of ``hosts`` that no worker seen since ``since`` hosts."""
        live = {(kind, route) for (kind, route, _), seen in self._host_table().items()
                if seen >= since}
        return set(hosts) - live

    def _host_table(self) -> dict[tuple[str, str, str], float]:
        if not hasattr(self, "_hosts"):
            self._hosts = {}
        return self._hosts
