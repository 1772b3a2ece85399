"""The SQLite store: ``sqlite:///path.db``, stdlib ``sqlite3`` in WAL mode, shared by processes."""

from ._store import SQLiteStore, migrate

__all__ = ["SQLiteStore", "migrate"]
