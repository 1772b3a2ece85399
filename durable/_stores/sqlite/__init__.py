"""The SQLite store: ``sqlite:///path.db``, stdlib ``sqlite3`` in WAL mode, shared by processes."""

from ._connection import migrate
from ._store import SQLiteStore

__all__ = ["SQLiteStore", "migrate"]
