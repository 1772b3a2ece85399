"""``memory://``: the in-process store, for tests and embedding. Held to the conformance suite.

Everything lives in dicts owned by one event loop; no method awaits while it changes them, so
each is atomic for the other tasks of that loop, as a transaction is in the other stores. One
process holds the only copy: every end of an execution is reported to ``wakeup``, and nothing
survives the process.
"""

from ._store import MemoryStore

__all__ = ["MemoryStore"]
